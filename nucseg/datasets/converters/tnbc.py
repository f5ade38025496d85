"""TNBC (Naylor et al., IEEE TMI 2018) -> nucseg convention.

Source layout (``TNBC_NucleiSegmentation.zip`` from Zenodo record
1175282, 50 H&E images of 512x512 from 11 patients)::

    SRC/Slide_XX/<XX>_<k>.png   RGB(A) image (alpha dropped)
    SRC/GT_XX/<XX>_<k>.png      binary nucleus mask (0 / 255)

``SRC`` may also be the folder that contains ``TNBC_NucleiSegmentation``.

The ground truth is a *binary* mask, so instances are its connected
components (4-connectivity by default: annotators separate touching
nuclei by a background gap that may be only diagonal, which
8-connectivity would bridge). Nuclei drawn touching without any gap stay
merged; this is a limitation of the data, not of the conversion.

TNBC has no official split: every name goes to ``splits/all.txt`` unless
``split`` says otherwise; pass ``split_files`` for a custom split.
"""
import os
import re
from functools import partial
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

from nucseg.utils.io import read_image, read_label
from .errors import SourceLayoutError
from .layout import Sample, list_files, pair_by_stem, write_sample
from .painting import label_components
from .runner import ConversionSummary, SampleResult, run_conversion

PathLike = Union[str, os.PathLike]

__all__ = ['find_tnbc_samples', 'convert_tnbc_sample', 'convert_tnbc']

_SLIDE = re.compile(r'^slide_(\w+)$', re.IGNORECASE)


def _slide_dirs(src: Path) -> List[Tuple[str, Path]]:
    """``[(XX, Slide_XX folder), ...]`` sorted by XX."""
    found = []
    for p in src.iterdir():
        match = _SLIDE.match(p.name)
        if match and p.is_dir():
            found.append((match.group(1), p))
    return sorted(found)


def find_tnbc_samples(src: PathLike,
                      split: str = 'all',
                      skip_missing: bool = False,
                      connectivity: int = 4
                      ) -> Tuple[List[Sample], List[str]]:
    """Find the image/mask pairs of a TNBC source folder.

    Args:
        src: Folder holding ``Slide_XX`` and ``GT_XX`` (or its parent).
        split (str): Split name for every image.
        skip_missing (bool): Skip images without mask instead of raising.
        connectivity (int): 4 or 8, for the connected components.

    Returns:
        tuple: samples (named by image stem) and skipped stems.
    """
    src = Path(src)
    if not src.is_dir():
        raise SourceLayoutError(f'TNBC source folder not found: {src}')
    if not _slide_dirs(src) and (src / 'TNBC_NucleiSegmentation').is_dir():
        src = src / 'TNBC_NucleiSegmentation'
    slides = _slide_dirs(src)
    if not slides:
        raise SourceLayoutError(
            f'{src} has no Slide_XX/ folders (TNBC layout: Slide_XX/*.png '
            'images and GT_XX/*.png masks)')
    samples, skipped = [], []
    for key, slide in slides:
        gt_dir = src / f'GT_{key}'
        masks = ({p.stem: p
                  for p in list_files(gt_dir, ('.png', ))}
                 if gt_dir.is_dir() else {})
        pairs, skip = pair_by_stem(
            list_files(slide, ('.png', )),
            masks,
            skip_missing,
            expected=str(gt_dir / '<stem>.png'))
        skipped += skip
        samples += [
            Sample(img.stem, img, mask, split,
                   dict(connectivity=connectivity)) for img, mask in pairs
        ]
    return samples, skipped


def convert_tnbc_sample(sample: Sample, out_root: PathLike) -> SampleResult:
    """Convert one TNBC pair: connected components of the binary mask."""
    image = read_image(sample.image)
    mask = read_label(sample.annotation)
    label = label_components(
        mask > 0, sample.extra.get('connectivity', 4))
    num = write_sample(out_root, sample.name, image, label, sample.image,
                       sample.annotation)
    return SampleResult(sample.name, sample.split, num, label.shape)


def convert_tnbc(src: PathLike,
                 out_root: PathLike,
                 split: str = 'all',
                 split_files: Optional[Sequence[PathLike]] = None,
                 nproc: int = 1,
                 skip_missing: bool = False,
                 connectivity: int = 4,
                 show_progress: bool = False) -> ConversionSummary:
    """Convert a TNBC source folder (see the module doc).

    Args:
        src: Folder with ``Slide_XX`` / ``GT_XX`` (or its parent).
        out_root: Output root.
        split (str): Split name for every image (default ``'all'``).
        split_files (Sequence, optional): Extra split lists.
        nproc (int): Processes.
        skip_missing (bool): Skip images without mask (default: raise).
        connectivity (int): 4 or 8 for the connected components.
        show_progress (bool): Show a progress bar.

    Returns:
        ConversionSummary: What was written.
    """
    if connectivity not in (4, 8):
        raise ValueError(f'connectivity must be 4 or 8, got {connectivity}')
    samples, skipped = find_tnbc_samples(src, split, skip_missing,
                                         connectivity)
    return run_conversion(
        'TNBC',
        samples,
        partial(convert_tnbc_sample, out_root=out_root),
        out_root,
        split_files=split_files,
        nproc=nproc,
        show_progress=show_progress,
        skipped=skipped)
