"""BBBC039 (U2OS nuclei, Broad Bioimage Benchmark Collection) -> nucseg.

Source layout (``images.zip``, ``masks.zip``, ``metadata.zip``; 200
fluorescence fields of 520x696)::

    SRC/images/<stem>.tif           16-bit grey (Hoechst); rescaled to
                                    uint8 RGB by the 0.01-99.99 percentiles
    SRC/masks/<stem>.png            colour-coded nuclei (see below)
    SRC/metadata/training.txt       mask file names, one a line
    SRC/metadata/validation.txt
    SRC/metadata/test.txt

Masks: the code of a nucleus is stored in the red channel; nuclei that
touch no other nucleus share the value 1 and touching nuclei get 2, 3,
... so that neighbours differ (the data set's authors decode them with
"first channel, then label connected components"). Every connected
region of one non-zero value (8-connectivity, as in the authors' example)
is therefore one instance.

Splits: ``training`` -> ``train``, ``validation`` -> ``val``, ``test`` ->
``test``. Images not listed in any metadata file go to ``unlisted``
(with a warning); without a ``metadata`` folder everything goes to
``all``.
"""
import os
import warnings
from functools import partial
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from PIL import Image

from nucseg.utils.io import ImageReadError, read_image
from .errors import SourceLayoutError
from .layout import (Sample, find_subdir, list_files, pair_by_stem,
                     read_split_file, write_sample)
from .painting import label_by_value
from .runner import ConversionSummary, SampleResult, run_conversion

PathLike = Union[str, os.PathLike]

#: Metadata file stem -> nucseg split name.
METADATA_SPLITS = {'training': 'train', 'validation': 'val', 'test': 'test'}

__all__ = [
    'METADATA_SPLITS', 'decode_bbbc039_mask', 'find_bbbc039_samples',
    'convert_bbbc039_sample', 'convert_bbbc039'
]


def decode_bbbc039_mask(path: PathLike, connectivity: int = 8) -> np.ndarray:
    """Decode a BBBC039 mask PNG into an instance map.

    Args:
        path: Mask PNG (RGB(A) or grey).
        connectivity (int): 4 or 8.

    Returns:
        np.ndarray: ``HxW`` int32 instance map with ids ``1..N``.

    Raises:
        ImageReadError: If the file cannot be read (named in the message).
    """
    try:
        with Image.open(path) as im:
            code = np.array(im)
    except (OSError, ValueError) as err:
        raise ImageReadError(f'cannot read mask {path}: {err}') from err
    if code.ndim == 3:
        code = code[..., 0]
    if code.ndim != 2:
        raise ImageReadError(f'mask {path} has shape {code.shape}')
    return label_by_value(code, connectivity)


def _metadata_splits(src: Path) -> Optional[Dict[str, str]]:
    meta = find_subdir(src, ['metadata'])
    if meta is None:
        return None
    name_to_split: Dict[str, str] = {}
    for stem, split in METADATA_SPLITS.items():
        path = meta / f'{stem}.txt'
        if not path.is_file():
            continue
        for name in read_split_file(path):
            name_to_split.setdefault(name, split)
    return name_to_split


def find_bbbc039_samples(src: PathLike,
                         skip_missing: bool = False,
                         connectivity: int = 8
                         ) -> Tuple[List[Sample], List[str]]:
    """Find the image/mask pairs of a BBBC039 folder and their splits.

    Returns:
        tuple: samples (named by image stem) and skipped stems.
    """
    src = Path(src)
    img_dir, mask_dir = find_subdir(src, ['images']), find_subdir(
        src, ['masks'])
    if img_dir is None or mask_dir is None:
        raise SourceLayoutError(
            f'{src} needs images/ and masks/ folders (BBBC039 layout)')
    masks = {p.stem: p for p in list_files(mask_dir, ('.png', ))}
    pairs, skipped = pair_by_stem(
        list_files(img_dir, ('.tif', '.tiff', '.png')), masks, skip_missing,
        expected=str(mask_dir / '<stem>.png'))
    splits = _metadata_splits(src)
    if splits is None:
        warnings.warn(f'{src}: no metadata/ folder; all images go to '
                      'split "all"')
    samples, unlisted = [], []
    for img, mask in pairs:
        split = 'all' if splits is None else splits.get(img.stem)
        if split is None:
            split = 'unlisted'
            unlisted.append(img.stem)
        samples.append(
            Sample(img.stem, img, mask, split,
                   dict(connectivity=connectivity)))
    if unlisted:
        warnings.warn(f'{len(unlisted)} BBBC039 images are in no metadata '
                      'split and go to split "unlisted"')
    if splits:
        listed_missing = sorted(set(splits) - {s.name for s in samples})
        if listed_missing and not skip_missing:
            raise SourceLayoutError(
                f'{len(listed_missing)} names of {src / "metadata"} have no '
                f'image/mask pair: {", ".join(listed_missing[:5])}')
    return samples, skipped


def convert_bbbc039_sample(sample: Sample,
                           out_root: PathLike) -> SampleResult:
    """Convert one BBBC039 pair (16-bit image, colour-coded mask)."""
    image = read_image(sample.image)
    label = decode_bbbc039_mask(sample.annotation,
                                sample.extra.get('connectivity', 8))
    num = write_sample(out_root, sample.name, image, label, sample.image,
                       sample.annotation)
    return SampleResult(sample.name, sample.split, num, label.shape)


def convert_bbbc039(src: PathLike,
                    out_root: PathLike,
                    split_files: Optional[Sequence[PathLike]] = None,
                    nproc: int = 1,
                    skip_missing: bool = False,
                    connectivity: int = 8,
                    show_progress: bool = False) -> ConversionSummary:
    """Convert a BBBC039 folder (see the module doc).

    Args:
        src: Folder with ``images``, ``masks`` and ``metadata``.
        out_root: Output root.
        split_files (Sequence, optional): Extra split lists.
        nproc (int): Processes.
        skip_missing (bool): Skip images without mask, and metadata names
            without files (default: raise).
        connectivity (int): 4 or 8 for the per-value components.
        show_progress (bool): Show a progress bar.

    Returns:
        ConversionSummary: What was written.
    """
    if connectivity not in (4, 8):
        raise ValueError(f'connectivity must be 4 or 8, got {connectivity}')
    samples, skipped = find_bbbc039_samples(src, skip_missing, connectivity)
    return run_conversion(
        'BBBC039',
        samples,
        partial(convert_bbbc039_sample, out_root=out_root),
        out_root,
        split_files=split_files,
        nproc=nproc,
        show_progress=show_progress,
        skipped=skipped)
