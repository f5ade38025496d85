"""KIRC (Irshad et al., PSB 2014) -> nucseg convention.

Kidney renal clear cell carcinoma nuclei from TCGA, 400x400 crops at 40x
(the self-ensembling UDA paper uses 463 of them). The data are given out
by the CellSegUDA authors on request in the layout their code
(github minhazul-haq/CellSegDA) reads, which this converter takes::

    SRC/<split>_images/<id>_image.tiff   RGB(A) image
    SRC/<split>_masks/<id>_mask.png      binary nucleus mask (0 / 255)

with ``<split>`` in ``train``, ``validation``, ``test``; a single pair of
folders ``SRC/images/`` + ``SRC/masks/`` works too, as do ``.tif`` /
``.png`` images and masks named ``<id>.png`` (without ``_mask``).

A binary mask (one non-zero value) becomes instances by its connected
components (4-connectivity by default, as TNBC: touching nuclei separated
by a diagonal gap stay apart); a mask with several non-zero values is
taken as an instance map and renumbered.

All samples are listed in ``splits/all.txt``; ``ratios`` (default 80/10/10)
and ``seed`` write reproducible ``train``/``val``/``test`` splits of the
converted samples (:func:`.splits.write_seeded_splits`), also when some
samples failed (those are left out; the conversion still reports them).
"""
import os
import re
from functools import partial
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np

from nucseg.utils.io import read_image, read_label
from nucseg.utils.labels import relabel_sequential
from .errors import SourceLayoutError
from .layout import Sample, list_files, pair_by_stem, write_sample
from .painting import label_components
from .runner import ConversionSummary, SampleResult
from .splits import run_with_seeded_splits

PathLike = Union[str, os.PathLike]

__all__ = [
    'find_kirc_samples', 'convert_kirc_sample', 'convert_kirc',
    'mask_to_instances'
]

_IMAGE_DIR = re.compile(r'^(?:\w+[_-])?images$', re.IGNORECASE)
_IMAGE_SUFFIX = re.compile(r'_image$', re.IGNORECASE)
_MASK_SUFFIX = re.compile(r'_mask$', re.IGNORECASE)


def mask_to_instances(mask: np.ndarray, connectivity: int = 4) -> np.ndarray:
    """Instances of a KIRC-style mask.

    Args:
        mask (np.ndarray): ``H x W`` integer mask.
        connectivity (int): 4 or 8, for binary masks.

    Returns:
        np.ndarray: ``H x W`` int32 instance map, ids ``1..N``: connected
        components of a binary mask (one non-zero value), the renumbered
        map otherwise.
    """
    values = np.unique(mask)
    if values[values != 0].size <= 1:
        return label_components(mask > 0, connectivity)
    return relabel_sequential(mask).astype(np.int32)


def _image_mask_dirs(src: Path) -> List[Tuple[Path, Path]]:
    """``[(images folder, masks folder), ...]`` found in ``src``."""
    pairs = []
    for folder in sorted(p for p in src.iterdir() if p.is_dir()):
        if not _IMAGE_DIR.match(folder.name):
            continue
        mask_name = re.sub('images', 'masks', folder.name,
                           flags=re.IGNORECASE)
        masks = src / mask_name
        if not masks.is_dir():
            # also accept other capitalisations of the sibling
            found = [p for p in src.iterdir()
                     if p.is_dir() and p.name.lower() == mask_name.lower()]
            if not found:
                raise SourceLayoutError(
                    f'KIRC: {folder} has no sibling mask folder {masks}')
            masks = found[0]
        pairs.append((folder, masks))
    return pairs


def find_kirc_samples(src: PathLike,
                      skip_missing: bool = False,
                      connectivity: int = 4
                      ) -> Tuple[List[Sample], List[str]]:
    """Find the image/mask pairs of a KIRC source folder.

    Args:
        src: Folder holding ``*_images`` / ``*_masks`` folders.
        skip_missing (bool): Skip images without mask instead of raising.
        connectivity (int): 4 or 8, for the connected components.

    Returns:
        tuple: samples (named by ``<id>``, split ``'all'``) and skipped
        image stems.

    Raises:
        SourceLayoutError: No image folder, a missing mask folder, or two
            images with the same ``<id>``.
    """
    src = Path(src)
    if not src.is_dir():
        raise SourceLayoutError(f'KIRC source folder not found: {src}')
    dirs = _image_mask_dirs(src)
    if not dirs:
        raise SourceLayoutError(
            f'{src} has no images/ or <split>_images/ folder (KIRC layout: '
            '<split>_images/<id>_image.tiff and <split>_masks/<id>_mask.png)')
    samples, skipped = [], []
    for img_dir, mask_dir in dirs:
        masks = {}
        for path in list_files(mask_dir, ('.png', '.tif', '.tiff')):
            masks[_MASK_SUFFIX.sub('', path.stem)] = path
        images = list_files(img_dir)
        by_id = {_IMAGE_SUFFIX.sub('', p.stem): p for p in images}
        renamed = [p.with_name(f'{i}{p.suffix}') for i, p in by_id.items()]
        pairs, skip = pair_by_stem(
            renamed, masks, skip_missing,
            expected=str(mask_dir / '<stem>_mask.png'))
        skipped += skip
        samples += [
            Sample(stem.stem, by_id[stem.stem], mask, 'all',
                   dict(connectivity=connectivity)) for stem, mask in pairs
        ]
    return samples, skipped


def convert_kirc_sample(sample: Sample, out_root: PathLike) -> SampleResult:
    """Convert one KIRC pair (see :func:`mask_to_instances`)."""
    image = read_image(sample.image)
    label = mask_to_instances(
        read_label(sample.annotation), sample.extra.get('connectivity', 4))
    num = write_sample(out_root, sample.name, image, label, sample.image,
                       sample.annotation)
    return SampleResult(sample.name, sample.split, num, label.shape)


def convert_kirc(src: PathLike,
                 out_root: PathLike,
                 ratios: Optional[Sequence[float]] = (0.8, 0.1, 0.1),
                 seed: int = 0,
                 split_files: Optional[Sequence[PathLike]] = None,
                 nproc: int = 1,
                 skip_missing: bool = False,
                 connectivity: int = 4,
                 show_progress: bool = False) -> ConversionSummary:
    """Convert a KIRC source folder (see the module doc).

    Args:
        src: Folder with ``*_images`` / ``*_masks``.
        out_root: Output root.
        ratios (Sequence[float], optional): Train/val/test ratios of the
            seeded split (None: only ``splits/all.txt``).
        seed (int): Seed of the split.
        split_files (Sequence, optional): Extra split lists.
        nproc (int): Processes.
        skip_missing (bool): Skip images without mask (default: raise).
        connectivity (int): 4 or 8 for the connected components.
        show_progress (bool): Show a progress bar.

    Returns:
        ConversionSummary: What was written (``splits`` includes the
        seeded ``train``/``val``/``test``).

    Raises:
        IncompleteConversionError: Some samples failed; the others and
            their splits (seeded ones included) were written.
    """
    if connectivity not in (4, 8):
        raise ValueError(f'connectivity must be 4 or 8, got {connectivity}')
    samples, skipped = find_kirc_samples(src, skip_missing, connectivity)
    return run_with_seeded_splits(
        'KIRC', samples,
        partial(convert_kirc_sample, out_root=out_root), out_root,
        ratios, seed, split_files, nproc, show_progress, skipped)
