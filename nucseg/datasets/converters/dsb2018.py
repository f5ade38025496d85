"""2018 Data Science Bowl (BBBC038) -> nucseg convention.

Source layouts (``SRC`` is e.g. ``stage1_train`` or ``stage1_test``)::

    SRC/<id>/images/<id>.png     RGBA image (alpha dropped)
    SRC/<id>/masks/<k>.png       one binary mask per nucleus (train only)

and the run-length-encoded tables ``stage1_train_labels.csv`` (columns
``ImageId, EncodedPixels``) and ``stage1_solution.csv`` (``ImageId,
EncodedPixels, Height, Width, Usage``; the stage-1 test labels), one row
per nucleus. Pass a table as ``rle_csv`` to take the labels from it
instead of ``masks/``.

RLE format (Kaggle DSB 2018 evaluation page): space-separated pairs
``start length``; pixels are numbered from 1, top to bottom then left to
right (column-major), so pixel ``k`` is row ``(k - 1) % H``, column
``(k - 1) // H``.

Masks are supposed not to overlap, but the data has annotation errors:
instances are painted with
:func:`~nucseg.datasets.converters.painting.paint_instances` (smaller wins,
fully hidden ones get pixels back, empty ones are reported as dropped).
Outputs are named by ImageId; every name goes to ``split`` (default
``train``).
"""
import csv
import os
from functools import partial
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from nucseg.utils.io import read_image, read_label
from .errors import AnnotationError, MissingAnnotationError, SourceLayoutError
from .layout import Sample, list_files, write_sample
from .painting import paint_instances
from .runner import ConversionSummary, SampleResult, run_conversion

PathLike = Union[str, os.PathLike]

__all__ = [
    'rle_decode', 'rle_encode', 'read_rle_csv', 'find_dsb2018_samples',
    'convert_dsb2018_sample', 'convert_dsb2018'
]


def rle_decode(rle: str, shape: Tuple[int, int],
               source: str = '<rle>') -> np.ndarray:
    """Decode a DSB 2018 run-length string into flat pixel indices.

    Args:
        rle (str): ``"start length start length ..."`` (1-indexed,
            column-major).
        shape (tuple[int, int]): ``(H, W)`` of the image.
        source (str): Where the string comes from (for error messages).

    Returns:
        np.ndarray: Sorted row-major flat indices ``row * W + col``
        (int64) of the mask pixels.

    Raises:
        AnnotationError: For non-integers, an odd count, a start < 1, a
            length < 1 or a run beyond the image.
    """
    h, w = int(shape[0]), int(shape[1])
    try:
        nums = np.array([int(t) for t in rle.split()], dtype=np.int64)
    except ValueError as err:
        raise AnnotationError(f'{source}: RLE has a non-integer token: '
                              f'{err}') from err
    if nums.size % 2:
        raise AnnotationError(f'{source}: RLE has an odd number of values')
    starts, lengths = nums[0::2] - 1, nums[1::2]
    if starts.size and (starts.min() < 0 or lengths.min() < 1):
        raise AnnotationError(
            f'{source}: RLE starts must be >= 1 and lengths >= 1')
    if starts.size and (starts + lengths).max() > h * w:
        raise AnnotationError(
            f'{source}: RLE run ends beyond the {h}x{w} image (pixel '
            f'{int((starts + lengths).max())} > {h * w})')
    offsets = np.cumsum(lengths) - lengths
    col_major = np.arange(int(lengths.sum()), dtype=np.int64) + np.repeat(
        starts - offsets, lengths)
    rows, cols = col_major % h, col_major // h
    return np.sort(rows * w + cols)


def rle_encode(mask: np.ndarray) -> str:
    """Encode a binary ``HxW`` mask as a DSB 2018 run-length string."""
    pixels = np.asarray(mask).astype(bool).T.ravel()  # column-major
    padded = np.concatenate([[False], pixels, [False]])
    change = np.flatnonzero(padded[1:] != padded[:-1]) + 1
    starts, ends = change[0::2], change[1::2]
    return ' '.join(f'{s} {e - s}' for s, e in zip(starts, ends))


def read_rle_csv(
    path: PathLike,
    usage: Optional[Sequence[str]] = None
) -> Dict[str, Tuple[List[str], Optional[Tuple[int, int]]]]:
    """Read a DSB 2018 RLE table.

    Args:
        path: CSV with ``ImageId`` and ``EncodedPixels`` (and optionally
            ``Height``, ``Width``, ``Usage``).
        usage (Sequence[str], optional): Keep only rows whose ``Usage`` is
            one of these (e.g. ``['Public', 'Private']``).

    Returns:
        dict: ``ImageId -> (list of RLE strings, (H, W) or None)``, in
        file order; rows with an empty ``EncodedPixels`` add no nucleus.

    Raises:
        AnnotationError: For missing columns or inconsistent sizes (the
            file and row are named).
    """
    path = Path(path)
    if not path.is_file():
        raise AnnotationError(f'RLE table not found: {path}')
    out: Dict[str, Tuple[List[str], Optional[Tuple[int, int]]]] = {}
    with open(path, newline='') as f:
        reader = csv.DictReader(f)
        cols = set(reader.fieldnames or [])
        need = {'ImageId', 'EncodedPixels'}
        if not need <= cols:
            raise AnnotationError(
                f'{path}: needs columns ImageId and EncodedPixels, found '
                f'{sorted(cols)}')
        if usage is not None and 'Usage' not in cols:
            raise AnnotationError(
                f'{path}: has no Usage column to filter on')
        sized = {'Height', 'Width'} <= cols
        for row_no, row in enumerate(reader, start=2):
            if usage is not None and row['Usage'] not in usage:
                continue
            image_id = (row['ImageId'] or '').strip()
            if not image_id:
                raise AnnotationError(f'{path}:{row_no}: empty ImageId')
            shape = None
            if sized:
                try:
                    shape = (int(row['Height']), int(row['Width']))
                except (TypeError, ValueError) as err:
                    raise AnnotationError(
                        f'{path}:{row_no}: bad Height/Width') from err
            rles, prev = out.setdefault(image_id, ([], shape))
            if prev != shape:
                raise AnnotationError(
                    f'{path}:{row_no}: {image_id} has sizes {prev} and '
                    f'{shape}')
            rle = (row['EncodedPixels'] or '').strip()
            if rle:
                rles.append(rle)
    return out


def _image_of(folder: Path) -> Optional[Path]:
    """The image of ``<id>/images/`` (``<id>.png`` preferred)."""
    img_dir = folder / 'images'
    if not img_dir.is_dir():
        return None
    preferred = img_dir / f'{folder.name}.png'
    if preferred.is_file():
        return preferred
    files = list_files(img_dir)
    return files[0] if files else None


def find_dsb2018_samples(src: PathLike,
                         split: str = 'train',
                         rle_csv: Optional[PathLike] = None,
                         usage: Optional[Sequence[str]] = None,
                         skip_missing: bool = False
                         ) -> Tuple[List[Sample], List[str]]:
    """Find the DSB 2018 samples (arguments as in :func:`convert_dsb2018`).

    Returns:
        tuple: samples (named by ImageId) and skipped ImageIds.
    """
    src = Path(src)
    if not src.is_dir():
        raise SourceLayoutError(f'DSB 2018 source folder not found: {src}')
    folders = {
        p.name: p
        for p in sorted(src.iterdir()) if p.is_dir() and (p / 'images'
                                                          ).is_dir()
    }
    if not folders:
        raise SourceLayoutError(
            f'{src} has no <ImageId>/images/ folders (DSB 2018 layout)')
    samples, skipped = [], []
    if rle_csv is not None:
        table = read_rle_csv(rle_csv, usage)
        for image_id, (rles, shape) in table.items():
            folder = folders.get(image_id)
            image = _image_of(folder) if folder is not None else None
            if image is None:
                if not skip_missing:
                    raise MissingAnnotationError(
                        f'{rle_csv} lists ImageId {image_id} but '
                        f'{src / image_id / "images"} has no image')
                skipped.append(image_id)
                continue
            samples.append(
                Sample(image_id, image, rles, split,
                       dict(shape=shape, source=str(rle_csv))))
        return samples, skipped
    for image_id, folder in folders.items():
        image = _image_of(folder)
        masks = (list_files(folder / 'masks', ('.png', ))
                 if (folder / 'masks').is_dir() else [])
        if image is None or not masks:
            if not skip_missing:
                raise MissingAnnotationError(
                    f'{folder}: no image in images/ or no mask in masks/ '
                    '(pass rle_csv / --rle-csv for a test set, or '
                    'skip_missing / --skip-missing)')
            skipped.append(image_id)
            continue
        samples.append(Sample(image_id, image, masks, split))
    return samples, skipped


def convert_dsb2018_sample(sample: Sample,
                           out_root: PathLike) -> SampleResult:
    """Convert one DSB 2018 image with per-nucleus masks or RLE strings."""
    image = read_image(sample.image)
    shape = image.shape[:2]
    if 'source' in sample.extra:  # RLE rows
        source = sample.extra['source']
        want = sample.extra.get('shape')
        if want is not None and tuple(want) != tuple(shape):
            raise AnnotationError(
                f'{source}: ImageId {sample.name} is {want[0]}x{want[1]} '
                f'(HxW) but {sample.image} is {shape[0]}x{shape[1]}')
        pixel_sets = [
            rle_decode(r, shape, f'{source} ({sample.name}, nucleus {k})')
            for k, r in enumerate(sample.annotation)
        ]
        names = [f'RLE row {k}' for k in range(len(pixel_sets))]
        label_src = source
    else:
        pixel_sets, names = [], []
        for path in sample.annotation:
            mask = read_label(path)
            if mask.shape != shape:
                raise AnnotationError(
                    f'mask {path} is {mask.shape[1]}x{mask.shape[0]} (WxH) '
                    f'but {sample.image} is {shape[1]}x{shape[0]}')
            pixel_sets.append(np.flatnonzero(mask.ravel()))
            names.append(Path(path).name)
        label_src = Path(sample.annotation[0]).parent
    label, report = paint_instances(pixel_sets, shape, names)
    num = write_sample(out_root, sample.name, image, label, sample.image,
                       label_src)
    return SampleResult(sample.name, sample.split, num, label.shape,
                        report.as_dict())


def convert_dsb2018(src: PathLike,
                    out_root: PathLike,
                    split: str = 'train',
                    rle_csv: Optional[PathLike] = None,
                    usage: Optional[Sequence[str]] = None,
                    split_files: Optional[Sequence[PathLike]] = None,
                    nproc: int = 1,
                    skip_missing: bool = False,
                    show_progress: bool = False) -> ConversionSummary:
    """Convert a DSB 2018 stage folder (see the module doc).

    Args:
        src: ``stage1_train``-like folder of ``<ImageId>/`` folders.
        out_root: Output root.
        split (str): Split name for every image (default ``'train'``).
        rle_csv (PathLike, optional): RLE table to take the labels from
            instead of ``masks/``; only its ImageIds are converted.
        usage (Sequence[str], optional): Keep only RLE rows with this
            ``Usage`` (e.g. ``['Public', 'Private']``).
        split_files (Sequence, optional): Extra split lists.
        nproc (int): Processes.
        skip_missing (bool): Skip images without labels (default: raise).
        show_progress (bool): Show a progress bar.

    Returns:
        ConversionSummary: What was written, with overlap statistics.
    """
    samples, skipped = find_dsb2018_samples(src, split, rle_csv, usage,
                                            skip_missing)
    return run_conversion(
        'DSB2018',
        samples,
        partial(convert_dsb2018_sample, out_root=out_root),
        out_root,
        split_files=split_files,
        nproc=nproc,
        show_progress=show_progress,
        skipped=skipped)
