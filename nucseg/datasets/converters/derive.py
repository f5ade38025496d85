"""Derive a data set from another one in the nucseg convention.

Image-to-image steps (CycleGAN translation, nuclei inpainting...) read
``<src>/images/<name>.png`` (and ``labels/<name>.png`` when present),
write a new image under the same name in ``<out>/images``, copy the label
map unchanged and re-write every split file of the source for the names
that succeeded. It runs through :func:`.runner.run_conversion`, so one
failing image is reported by name while the others are still written.
"""
import os
from functools import partial
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from nucseg.utils.io import read_image, read_label, write_image
from .errors import SourceLayoutError
from .layout import Sample, list_files, read_split_file, write_sample
from .runner import ConversionSummary, SampleResult, run_conversion

PathLike = Union[str, os.PathLike]
ImageFn = Callable[[np.ndarray, Optional[np.ndarray], str],
                   Tuple[np.ndarray, Dict]]

__all__ = ['find_nucseg_samples', 'derive_dataset']


def find_nucseg_samples(src: PathLike,
                        splits: Optional[Sequence[str]] = None
                        ) -> Tuple[List[Sample], List[Path]]:
    """Samples of a data set in the nucseg convention.

    Args:
        src: Root with ``images/``, optional ``labels/`` and ``splits/``.
        splits (Sequence[str], optional): Only the names listed in these
            split files (default: every image).

    Returns:
        tuple: Samples (``annotation`` = the label path or None; ``split``
        = the first split file listing the name, else ``'all'``) and the
        source split files to carry over.

    Raises:
        SourceLayoutError: No ``images/`` folder, or a requested split
            file does not exist.
    """
    src = Path(src)
    img_dir = src / 'images'
    if not img_dir.is_dir():
        raise SourceLayoutError(
            f'{src} has no images/ folder (nucseg convention: images/, '
            'labels/, splits/)')
    split_files = sorted((src / 'splits').glob('*.txt'))
    if splits:
        wanted = [src / 'splits' / f'{s}.txt' for s in splits]
        missing = [str(p) for p in wanted if not p.is_file()]
        if missing:
            raise SourceLayoutError(f'split files not found: {missing}')
        split_files = wanted
    membership: Dict[str, str] = {}
    for path in split_files:
        for name in read_split_file(path):
            membership.setdefault(name, path.stem)
    images = {p.stem: p for p in list_files(img_dir)}
    names = sorted(membership) if splits else sorted(images)
    samples = []
    for name in names:
        label = src / 'labels' / f'{name}.png'
        samples.append(
            Sample(name, images.get(name, img_dir / f'{name}.png'),
                   label if label.is_file() else None,
                   membership.get(name, 'all')))
    return samples, split_files


def _derive_one(sample: Sample, out_root: PathLike, image_fn: ImageFn,
                require_labels: bool) -> SampleResult:
    image = read_image(sample.image)
    label = None
    if sample.annotation is not None:
        label = read_label(sample.annotation)
    elif require_labels:
        raise FileNotFoundError(
            f'{sample.image}: no label map {sample.name}.png in labels/ '
            '(this step needs the annotations)')
    new, report = image_fn(image, label, str(sample.image))
    if new.shape != image.shape or new.dtype != np.uint8:
        raise ValueError(f'{sample.image}: the step returned a '
                         f'{new.dtype} {new.shape} image for a '
                         f'{image.shape} input')
    if label is None:
        write_image(Path(out_root) / 'images' / f'{sample.name}.png', new)
        num = 0
    else:
        num = write_sample(out_root, sample.name, new, label, sample.image,
                           sample.annotation)
    return SampleResult(sample.name, sample.split, num, image.shape[:2],
                        report)


def derive_dataset(src: PathLike,
                   out_root: PathLike,
                   image_fn: ImageFn,
                   name: str,
                   splits: Optional[Sequence[str]] = None,
                   require_labels: bool = False,
                   show_progress: bool = False) -> ConversionSummary:
    """Apply ``image_fn`` to every image of ``src`` and write ``out_root``.

    Args:
        src: Source root (nucseg convention).
        out_root: Output root.
        image_fn (callable): ``(image HxWx3 uint8, label HxW or None,
            image path) -> (new image HxWx3 uint8, report dict)``.
        name (str): Name of the step for the summary.
        splits (Sequence[str], optional): Restrict to these splits.
        require_labels (bool): Fail images without a label map.
        show_progress (bool): Show a progress bar.

    Returns:
        ConversionSummary: What was written (failures raise
        ``IncompleteConversionError`` after the others are written).
    """
    samples, split_files = find_nucseg_samples(src, splits)
    return run_conversion(
        name,
        samples,
        partial(_derive_one, out_root=out_root, image_fn=image_fn,
                require_labels=require_labels),
        out_root,
        split_files=split_files,
        show_progress=show_progress)
