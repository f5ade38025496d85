"""CPM-17 (Vu et al., Front. Bioeng. Biotechnol. 2019) -> nucseg convention.

Source layout (as re-distributed with HoVer-Net; 32 train + 32 test H&E
images of 500x500 to 600x600)::

    SRC/train/Images/<stem>.png    RGB or RGBA image (alpha dropped)
    SRC/train/Labels/<stem>.mat    MATLAB file with ``inst_map`` (HxW)
    SRC/test/Images/...            same for the test split
    SRC/test/Labels/...

``SRC`` may also be one split folder holding ``Images`` and ``Labels``.
``.mat`` files are read with :func:`scipy.io.loadmat`; MATLAB v7.3
(HDF5) files need ``h5py`` (a clear error names the file when it is
missing). ``inst_map`` ids are renumbered ``1..N``.

Train and test use the same stems (``image_00`` ...), so outputs are
named ``<split>_<stem>`` (e.g. ``train_image_00``); splits are written to
``splits/train.txt`` and ``splits/test.txt``.
"""
import os
from functools import partial
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import scipy.io
from scipy.io.matlab import MatReadError

from nucseg.utils.io import read_image
from nucseg.utils.labels import relabel_sequential
from .errors import AnnotationError, SourceLayoutError
from .layout import Sample, find_subdir, list_files, pair_by_stem, write_sample
from .runner import ConversionSummary, SampleResult, run_conversion

PathLike = Union[str, os.PathLike]

__all__ = [
    'load_mat_inst_map', 'find_cpm17_samples', 'convert_cpm17_sample',
    'convert_cpm17'
]


def _load_hdf5_mat(path: Path, key: str) -> dict:
    """Read ``key`` (if present) and the variable names of a v7.3 file."""
    try:
        import h5py
    except ImportError as err:
        raise AnnotationError(
            f'{path} is a MATLAB v7.3 (HDF5) file; reading it needs the '
            'h5py package, which is not installed') from err
    try:
        with h5py.File(path, 'r') as f:
            out = {k: None for k in f.keys()}
            if key in f:
                out[key] = np.asarray(f[key]).T  # MATLAB is column-major
    except OSError as err:
        raise AnnotationError(f'cannot read {path}: {err}') from err
    return out


def load_mat_inst_map(path: PathLike, key: str = 'inst_map') -> np.ndarray:
    """Read an instance map stored in a MATLAB ``.mat`` file.

    Args:
        path: ``.mat`` file (v5 via SciPy, v7.3/HDF5 via h5py).
        key (str): Variable name.

    Returns:
        np.ndarray: ``HxW`` int64 instance map (not renumbered).

    Raises:
        AnnotationError: If the file cannot be read, lacks ``key``, needs
            the missing h5py, or ``key`` is not a 2-D non-negative integer
            map; the message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise AnnotationError(f'annotation file not found: {path}')
    try:
        mat = scipy.io.loadmat(str(path))
    except NotImplementedError:  # MATLAB v7.3 = HDF5
        mat = _load_hdf5_mat(path, key)
    except (MatReadError, ValueError, TypeError, OSError) as err:
        raise AnnotationError(f'cannot read {path}: {err}') from err
    if key not in mat:
        keys = sorted(k for k in mat if not k.startswith('__'))
        raise AnnotationError(
            f'{path}: no variable {key!r} (found: {", ".join(keys)})')
    arr = np.asarray(mat[key])
    arr = np.squeeze(arr)
    if arr.ndim != 2:
        raise AnnotationError(
            f'{path}: {key!r} has shape {arr.shape}; expected HxW')
    if not (np.issubdtype(arr.dtype, np.integer) or arr.dtype == bool):
        if not (np.issubdtype(arr.dtype, np.floating)
                and np.all(np.isfinite(arr))
                and np.all(arr == np.round(arr))):
            raise AnnotationError(
                f'{path}: {key!r} is not an integer map ({arr.dtype})')
    arr = arr.astype(np.int64)
    if arr.size and arr.min() < 0:
        raise AnnotationError(f'{path}: {key!r} has negative ids')
    return arr


def _split_dirs(src: Path, splits: Optional[Sequence[str]],
                default_split: str) -> List[Tuple[str, Path]]:
    """``[(split, folder with Images/ and Labels/), ...]``."""
    if find_subdir(src, ['Images']) and find_subdir(src, ['Labels']):
        return [(default_split, src)]
    found = []
    for name in (splits or ('train', 'test')):
        folder = find_subdir(src, [name])
        if folder is None:
            if splits:
                raise SourceLayoutError(f'{src} has no {name}/ folder')
            continue
        found.append((name, folder))
    if not found:
        raise SourceLayoutError(
            f'{src} has no train/ or test/ folder with Images/ and Labels/ '
            '(CPM-17 layout)')
    return found


def find_cpm17_samples(src: PathLike,
                       splits: Optional[Sequence[str]] = None,
                       skip_missing: bool = False,
                       default_split: str = 'train'
                       ) -> Tuple[List[Sample], List[str]]:
    """Find the image/label pairs of a CPM-17 source folder.

    Args:
        src: CPM-17 root (with ``train``/``test``) or one split folder.
        splits (Sequence[str], optional): Splits to convert (default: the
            ``train`` and ``test`` folders present).
        skip_missing (bool): Skip images without ``.mat`` (default: raise).
        default_split (str): Split name when ``src`` is one split folder.

    Returns:
        tuple: samples (named ``<split>_<stem>``) and skipped stems.
    """
    src = Path(src)
    if not src.is_dir():
        raise SourceLayoutError(f'CPM-17 source folder not found: {src}')
    samples, skipped = [], []
    for split, folder in _split_dirs(src, splits, default_split):
        img_dir = find_subdir(folder, ['Images'])
        lab_dir = find_subdir(folder, ['Labels'])
        if img_dir is None or lab_dir is None:
            raise SourceLayoutError(
                f'{folder} needs Images/ and Labels/ folders (CPM-17)')
        mats = {p.stem: p for p in list_files(lab_dir, ('.mat', ))}
        pairs, skip = pair_by_stem(
            list_files(img_dir), mats, skip_missing,
            expected=str(lab_dir / '<stem>.mat'))
        skipped += [f'{split}/{s}' for s in skip]
        samples += [
            Sample(f'{split}_{img.stem}', img, mat, split)
            for img, mat in pairs
        ]
    return samples, skipped


def convert_cpm17_sample(sample: Sample, out_root: PathLike) -> SampleResult:
    """Convert one CPM-17 pair (``inst_map`` renumbered ``1..N``)."""
    image = read_image(sample.image)
    label = relabel_sequential(load_mat_inst_map(sample.annotation))
    num = write_sample(out_root, sample.name, image, label, sample.image,
                       sample.annotation)
    return SampleResult(sample.name, sample.split, num, label.shape)


def convert_cpm17(src: PathLike,
                  out_root: PathLike,
                  splits: Optional[Sequence[str]] = None,
                  split_files: Optional[Sequence[PathLike]] = None,
                  nproc: int = 1,
                  skip_missing: bool = False,
                  show_progress: bool = False) -> ConversionSummary:
    """Convert a CPM-17 source folder (see the module doc).

    Args:
        src: CPM-17 root or one split folder.
        out_root: Output root.
        splits (Sequence[str], optional): Split folders to convert.
        split_files (Sequence, optional): Extra split lists.
        nproc (int): Processes.
        skip_missing (bool): Skip images without ``.mat`` (default: raise).
        show_progress (bool): Show a progress bar.

    Returns:
        ConversionSummary: What was written.
    """
    samples, skipped = find_cpm17_samples(src, splits, skip_missing)
    return run_conversion(
        'CPM-17',
        samples,
        partial(convert_cpm17_sample, out_root=out_root),
        out_root,
        split_files=split_files,
        nproc=nproc,
        show_progress=show_progress,
        skipped=skipped)
