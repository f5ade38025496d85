"""EM mitochondria data sets (SAMDA) -> nucseg convention.

Three source layouts:

* **EPFL / Lucchi** (Lucchi et al., TMI 2012; FIB-SEM, 165 slices of
  768 x 1024 per volume): multi-page TIFF stacks ``training.tif`` +
  ``training_groundtruth.tif`` and ``testing.tif`` +
  ``testing_groundtruth.tif`` -> splits ``train`` and ``test``
  (:func:`convert_epfl_lucchi`).
* **Lucchi++ / Kasthuri++** (Casser et al., MIDL 2020): folders of PNG
  slices ``Train_In/``, ``Train_Out/``, ``Test_In/``, ``Test_Out/`` (the
  folder holding them may be one level down, e.g. ``Kasthuri++/``) ->
  splits ``train`` and ``test`` (:func:`convert_casser_pp`). Kasthuri++
  masks are RGB(A) with (255, 255, 255) for mitochondria and (2, 2, 2)
  marking the area outside the imaged volume; the latter is background
  here.
* **Generic**: one image stack + one mask stack (:func:`convert_tiff_stack`)
  or one folder of images + one folder of masks paired by name
  (:func:`convert_em_folders`; masks may be absent for unlabelled data).

Masks are binarised as ``value > 127`` (8-bit masks with 255 foreground,
also anti-aliased ones; masks holding only 0 and 1, e.g. the 1-bit PNGs
found among the VNC masks, as ``value > 0``) and stored as instance maps:
the connected components of the foreground (4-connectivity by default),
ids ``1..N``,
like every nucseg label map. A semantic (0/1) target is what SAMDA
trains on (``GenerateNucleiTarget(mode='binary')``); instance ids keep
the convention uniform and allow instance metrics. Image slices are
written as grey in three equal channels (``images/<name>.png``).

Multi-page TIFFs are read page by page with ``tifffile`` (one page per
sample, so a conversion never holds a whole volume in memory).
"""
import os
import re
import warnings
from functools import partial
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from nucseg.utils.io import read_image, read_label, to_rgb_uint8, write_image
from .errors import AnnotationError, SourceLayoutError
from .layout import (IMAGE_EXTENSIONS, Sample, find_subdir, list_files,
                     write_sample, write_split)
from .painting import label_components
from .runner import ConversionSummary, SampleResult, run_conversion

PathLike = Union[str, os.PathLike]

__all__ = [
    'MASK_THRESHOLD', 'binarize_mask', 'count_pages', 'read_page',
    'convert_tiff_stack', 'convert_epfl_lucchi', 'pair_slices',
    'convert_em_folders', 'convert_casser_pp', 'write_random_split'
]

#: Mask values above this are foreground.
MASK_THRESHOLD = 127

_TRAILING_NUMBER = re.compile(r'(\d+)$')


def binarize_mask(mask: np.ndarray, threshold: int = MASK_THRESHOLD,
                  name: str = '<mask>') -> np.ndarray:
    """Foreground of an ``HxW`` (or equal-channel ``HxWxC``) mask.

    ``value > threshold`` for 8-bit style masks (255 = foreground, possibly
    anti-aliased); a mask whose values are only 0 and 1 (1-bit PNGs, 0/1
    label images) has foreground ``value > 0``.
    """
    mask = np.asarray(mask)
    if mask.ndim == 3:
        if mask.shape[2] == 4:
            mask = mask[..., :3]
        if not np.all(mask == mask[..., :1]):
            raise AnnotationError(
                f'{name}: mask has differing colour channels; expected a '
                'grey (or grey-as-RGB) mask')
        mask = mask[..., 0]
    if mask.ndim != 2:
        raise AnnotationError(f'{name}: expected an HxW mask, got shape '
                              f'{mask.shape}')
    if mask.dtype == bool or (mask.size and mask.min() >= 0
                              and mask.max() <= 1):
        return mask > 0
    return mask > threshold


def _tifffile():
    try:
        import tifffile
    except ImportError as err:  # pragma: no cover - pinned dependency
        raise ImportError('reading TIFF stacks needs tifffile (pinned in '
                          'requirements/runtime.txt)') from err
    return tifffile


def count_pages(path: PathLike) -> int:
    """Number of pages (2-D slices) of a multi-page TIFF."""
    path = Path(path)
    if not path.is_file():
        raise SourceLayoutError(f'TIFF stack not found: {path}')
    tifffile = _tifffile()
    try:
        with tifffile.TiffFile(path) as tif:
            return len(tif.pages)
    except Exception as err:  # tifffile raises its own error types
        raise SourceLayoutError(f'cannot read TIFF {path}: {err}') from err


def read_page(path: PathLike, index: int) -> np.ndarray:
    """Page ``index`` of a multi-page TIFF (``HxW`` or ``HxWxC``)."""
    tifffile = _tifffile()
    try:
        with tifffile.TiffFile(os.fspath(path)) as tif:
            arr = tif.pages[int(index)].asarray()
    except Exception as err:
        raise SourceLayoutError(
            f'cannot read page {index} of {path}: {err}') from err
    return np.asarray(arr)


def _label_from_mask(mask: np.ndarray, connectivity: int, threshold: int,
                     name: str) -> np.ndarray:
    return label_components(
        binarize_mask(mask, threshold, name), connectivity)


def _convert_stack_slice(sample: Sample, out_root: PathLike) -> SampleResult:
    k = sample.extra['index']
    name = f'{sample.image}[{k}]'
    image = to_rgb_uint8(read_page(sample.image, k), name=name)
    label = _label_from_mask(
        read_page(sample.annotation, k), sample.extra['connectivity'],
        sample.extra['threshold'], f'{sample.annotation}[{k}]')
    num = write_sample(out_root, sample.name, image, label, name,
                       f'{sample.annotation}[{k}]')
    return SampleResult(sample.name, sample.split, num, label.shape)


def _stack_samples(image_stack: PathLike, mask_stack: PathLike, split: str,
                   prefix: str, connectivity: int,
                   threshold: int) -> List[Sample]:
    n_img, n_mask = count_pages(image_stack), count_pages(mask_stack)
    if n_img != n_mask:
        raise SourceLayoutError(
            f'{image_stack} has {n_img} slices but {mask_stack} has '
            f'{n_mask}; image and mask stacks must match slice by slice')
    width = max(4, len(str(n_img - 1)))
    return [
        Sample(f'{prefix}_{k:0{width}d}', Path(image_stack),
               Path(mask_stack), split,
               dict(index=k, connectivity=connectivity,
                    threshold=threshold)) for k in range(n_img)
    ]


def _check_connectivity(connectivity: int) -> None:
    if connectivity not in (4, 8):
        raise ValueError(f'connectivity must be 4 or 8, got {connectivity}')


def convert_tiff_stack(image_stack: PathLike,
                       mask_stack: PathLike,
                       out_root: PathLike,
                       split: str = 'all',
                       prefix: Optional[str] = None,
                       connectivity: int = 4,
                       threshold: int = MASK_THRESHOLD,
                       nproc: int = 1,
                       show_progress: bool = False) -> ConversionSummary:
    """Convert an image stack and its mask stack (generic layout).

    Slice ``k`` becomes ``<prefix>_<k:04d>`` (prefix: the image stack's
    file stem) in ``splits/<split>.txt``.
    """
    _check_connectivity(connectivity)
    prefix = prefix or Path(image_stack).stem
    samples = _stack_samples(image_stack, mask_stack, split, prefix,
                             connectivity, threshold)
    return run_conversion(
        'TIFF stack',
        samples,
        partial(_convert_stack_slice, out_root=out_root),
        out_root,
        nproc=nproc,
        show_progress=show_progress)


def _find_file(src: Path, stem: str) -> Optional[Path]:
    """``<stem>.tif(f)`` anywhere below ``src`` (case-insensitive)."""
    for path in sorted(src.rglob('*')):
        if path.is_file() and path.stem.lower() == stem and \
                path.suffix.lower() in ('.tif', '.tiff'):
            return path
    return None


def convert_epfl_lucchi(src: PathLike,
                        out_root: PathLike,
                        connectivity: int = 4,
                        threshold: int = MASK_THRESHOLD,
                        random_test: Optional[int] = None,
                        seed: int = 0,
                        nproc: int = 1,
                        show_progress: bool = False) -> ConversionSummary:
    """Convert the EPFL (Lucchi) FIB-SEM stacks.

    Args:
        src: Folder holding ``training.tif``, ``training_groundtruth.tif``,
            ``testing.tif`` and ``testing_groundtruth.tif`` (searched
            recursively; at least one image/ground-truth pair needed).
        out_root: Output root; slices ``training_0000``... go to split
            ``train``, ``testing_0000``... to ``test``.
        connectivity (int): 4 or 8 for the instance components.
        threshold (int): Mask foreground is ``value > threshold``.
        random_test (int, optional): Also write SAMDA's protocol split
            (Sec. 4: "randomly pick 100 images ... as the target domain
            testing set, and the remaining images form the target domain
            training set") of the ``train`` slices as
            ``splits/random_test.txt`` / ``random_train.txt``
            (:func:`write_random_split`).
        seed (int): Seed of that split.
        nproc (int): Processes.
        show_progress (bool): Progress bar.
    """
    _check_connectivity(connectivity)
    src = Path(src)
    if not src.is_dir():
        raise SourceLayoutError(f'EPFL source folder not found: {src}')
    samples: List[Sample] = []
    for stem, split in (('training', 'train'), ('testing', 'test')):
        img = _find_file(src, stem)
        gt = _find_file(src, f'{stem}_groundtruth')
        if img is None and gt is None:
            continue
        if img is None or gt is None:
            raise SourceLayoutError(
                f'{src}: found {img or gt} but not its '
                f'{"image" if img is None else "ground-truth"} stack '
                f'({stem}.tif + {stem}_groundtruth.tif)')
        samples += _stack_samples(img, gt, split, stem, connectivity,
                                  threshold)
    if not samples:
        raise SourceLayoutError(
            f'{src} has no EPFL stacks (training.tif + '
            'training_groundtruth.tif and/or testing.tif + '
            'testing_groundtruth.tif)')
    summary = run_conversion(
        'EPFL',
        samples,
        partial(_convert_stack_slice, out_root=out_root),
        out_root,
        nproc=nproc,
        show_progress=show_progress)
    if random_test is not None:
        if 'train' not in summary.splits:
            raise SourceLayoutError(
                f'{src}: random_test needs the training stack')
        summary.splits.update(
            write_random_split(out_root, summary.splits['train'],
                               random_test, seed))
    return summary


def write_random_split(out_root: PathLike,
                       names: Sequence[str],
                       num_test: int,
                       seed: int = 0,
                       prefix: str = 'random') -> Dict[str, List[str]]:
    """Write ``<prefix>_test`` (``num_test`` names) and ``<prefix>_train``
    (the rest), picked by ``numpy.random.default_rng(seed)``."""
    names = sorted(names)
    if not 0 < int(num_test) < len(names):
        raise ValueError(f'num_test must be in 1..{len(names) - 1}, got '
                         f'{num_test}')
    order = np.random.default_rng(int(seed)).permutation(len(names))
    test = {names[i] for i in order[:int(num_test)]}
    return {
        f'{prefix}_test':
        write_split(out_root, f'{prefix}_test', test),
        f'{prefix}_train':
        write_split(out_root, f'{prefix}_train',
                    [n for n in names if n not in test]),
    }


def pair_slices(images: Sequence[Path],
                masks: Sequence[Path]) -> List[Tuple[Path, Path]]:
    """Pair image and mask slices of two folders.

    By identical stems when every image has one; otherwise by the number
    at the end of the stem (``im0003`` <-> ``mask_0003``) when those match
    one to one; otherwise, for folders of equal size, by sorted order
    (with a warning).

    Raises:
        SourceLayoutError: No rule pairs every image.
    """
    by_stem = {m.stem: m for m in masks}
    if images and all(i.stem in by_stem for i in images):
        return [(i, by_stem[i.stem]) for i in images]

    def number(p: Path) -> Optional[int]:
        match = _TRAILING_NUMBER.search(p.stem)
        return int(match.group(1)) if match else None

    img_num = {number(i): i for i in images}
    mask_num = {number(m): m for m in masks}
    if None not in img_num and None not in mask_num and \
            len(img_num) == len(images) and set(img_num) <= set(mask_num):
        return [(img_num[k], mask_num[k]) for k in sorted(img_num)]
    if len(images) == len(masks) and images:
        warnings.warn(f'pairing {len(images)} images with masks by sorted '
                      f'order ({images[0].parent} / {masks[0].parent})')
        return list(zip(sorted(images), sorted(masks)))
    raise SourceLayoutError(
        f'cannot pair the {len(images)} images of '
        f'{images[0].parent if images else "?"} with the {len(masks)} masks '
        f'of {masks[0].parent if masks else "?"} (by name, by trailing '
        'number or by order)')


def _convert_folder_slice(sample: Sample, out_root: PathLike) -> SampleResult:
    image = read_image(sample.image)
    if sample.annotation is None:
        write_image(Path(out_root) / 'images' / f'{sample.name}.png', image)
        return SampleResult(sample.name, sample.split, 0, image.shape[:2])
    mask = read_label(sample.annotation)
    label = _label_from_mask(mask, sample.extra['connectivity'],
                             sample.extra['threshold'],
                             os.fspath(sample.annotation))
    num = write_sample(out_root, sample.name, image, label, sample.image,
                       sample.annotation)
    return SampleResult(sample.name, sample.split, num, label.shape)


def _folder_samples(image_dir: PathLike, mask_dir: Optional[PathLike],
                    split: str, prefix: str, connectivity: int,
                    threshold: int) -> List[Sample]:
    image_dir = Path(image_dir)
    if not image_dir.is_dir():
        raise SourceLayoutError(f'image folder not found: {image_dir}')
    images = list_files(image_dir, IMAGE_EXTENSIONS)
    if not images:
        raise SourceLayoutError(f'no images in {image_dir}')
    extra = dict(connectivity=connectivity, threshold=threshold)
    name = (lambda s: f'{prefix}_{s}') if prefix else (lambda s: s)
    if mask_dir is None:
        return [Sample(name(i.stem), i, None, split, extra) for i in images]
    mask_dir = Path(mask_dir)
    if not mask_dir.is_dir():
        raise SourceLayoutError(f'mask folder not found: {mask_dir}')
    pairs = pair_slices(images, list_files(mask_dir, IMAGE_EXTENSIONS))
    return [Sample(name(i.stem), i, m, split, extra) for i, m in pairs]


def convert_em_folders(image_dir: PathLike,
                       mask_dir: Optional[PathLike],
                       out_root: PathLike,
                       split: str = 'all',
                       prefix: str = '',
                       connectivity: int = 4,
                       threshold: int = MASK_THRESHOLD,
                       nproc: int = 1,
                       show_progress: bool = False) -> ConversionSummary:
    """Convert a folder of image slices and a folder of mask slices.

    Args:
        image_dir: Image slices (PNG, TIFF, ...; grey or RGB).
        mask_dir: Mask slices paired by :func:`pair_slices`; None writes
            the images only (unlabelled data, e.g. SAMDA's step 2).
        out_root: Output root.
        split (str): Split of every slice.
        prefix (str): Output names are ``<prefix>_<image stem>`` (or the
            stem when empty).
        connectivity, threshold, nproc, show_progress: As
            :func:`convert_tiff_stack`.
    """
    _check_connectivity(connectivity)
    samples = _folder_samples(image_dir, mask_dir, split, prefix,
                              connectivity, threshold)
    return run_conversion(
        'EM folders',
        samples,
        partial(_convert_folder_slice, out_root=out_root),
        out_root,
        nproc=nproc,
        show_progress=show_progress)


def convert_casser_pp(src: PathLike,
                      out_root: PathLike,
                      dataset: str = 'Lucchi++/Kasthuri++',
                      connectivity: int = 4,
                      threshold: int = MASK_THRESHOLD,
                      nproc: int = 1,
                      show_progress: bool = False) -> ConversionSummary:
    """Convert Lucchi++ or Kasthuri++ (``{Train,Test}_{In,Out}`` folders).

    Slices are named ``train_<stem>`` / ``test_<stem>`` (split ``train`` /
    ``test``).
    """
    _check_connectivity(connectivity)
    root = Path(src)
    if not root.is_dir():
        raise SourceLayoutError(f'{dataset} source folder not found: {root}')
    if find_subdir(root, ['Train_In', 'Test_In']) is None:
        subs = [p for p in sorted(root.iterdir()) if p.is_dir()
                and find_subdir(p, ['Train_In', 'Test_In']) is not None]
        if len(subs) == 1:
            root = subs[0]
    samples: List[Sample] = []
    for split, stem in (('train', 'Train'), ('test', 'Test')):
        img_dir = find_subdir(root, [f'{stem}_In'])
        mask_dir = find_subdir(root, [f'{stem}_Out'])
        if img_dir is None:
            continue
        if mask_dir is None:
            raise SourceLayoutError(
                f'{root}: {img_dir.name}/ has no {stem}_Out/ mask folder')
        samples += _folder_samples(img_dir, mask_dir, split, split,
                                   connectivity, threshold)
    if not samples:
        raise SourceLayoutError(
            f'{src} has no Train_In/ or Test_In/ folder ({dataset} layout: '
            'Train_In, Train_Out, Test_In, Test_Out with PNG slices)')
    return run_conversion(
        dataset,
        samples,
        partial(_convert_folder_slice, out_root=out_root),
        out_root,
        nproc=nproc,
        show_progress=show_progress)
