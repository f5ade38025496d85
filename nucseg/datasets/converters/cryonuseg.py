"""CryoNuSeg (Mahbod et al., ISBI 2021) -> nucseg convention.

Source layout (Kaggle ``segmentation-of-nuclei-in-cryosectioned-he-images``;
30 H&E frozen-section images of 512x512 from 10 organs)::

    SRC/tissue images/Human_<Organ>_<NN>.tif
    SRC/Annotator 1 (biologist)/label masks modify/<same name>.tif
    SRC/Annotator 1 (biologist second round of manual marks up)/
        Annotator 1 (biologist second round of manual marks up)/
        label masks modify/<same name>.tif
    SRC/Annotator 2 (bioinformatician)/Annotator 2 (bioinformatician)/
        label masks modify/<same name>.tif

(each annotator folder also holds ``label masks``, ``mask binary``, ...).
The ``label masks modify`` TIFFs are instance label maps; their ids are
renumbered ``1..N`` (ids absent from the map disappear).

``annotation`` picks the annotator (``ann1``, ``ann1_round2``, ``ann2``;
the doubled folder nesting of the download is found automatically),
``mask_folder`` the label folder inside it, and ``label_dir`` overrides
both with an explicit folder (absolute or relative to ``SRC``).

CryoNuSeg has no official split: names go to ``splits/all.txt`` unless
``split`` says otherwise.
"""
import os
from functools import partial
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

from nucseg.utils.io import read_image, read_label
from nucseg.utils.labels import relabel_sequential
from .errors import SourceLayoutError
from .layout import Sample, find_subdir, list_files, pair_by_stem, write_sample
from .runner import ConversionSummary, SampleResult, run_conversion

PathLike = Union[str, os.PathLike]

#: Annotator folder of each annotation choice.
ANNOTATORS = {
    'ann1': 'Annotator 1 (biologist)',
    'ann1_round2': 'Annotator 1 (biologist second round of manual marks up)',
    'ann2': 'Annotator 2 (bioinformatician)',
}

__all__ = [
    'ANNOTATORS', 'find_cryonuseg_label_dir', 'find_cryonuseg_samples',
    'convert_cryonuseg_sample', 'convert_cryonuseg'
]


def find_cryonuseg_label_dir(src: PathLike,
                             annotation: str = 'ann1',
                             mask_folder: str = 'label masks modify',
                             label_dir: Optional[PathLike] = None) -> Path:
    """Locate the instance-label folder of one annotator.

    Args:
        src: CryoNuSeg root.
        annotation (str): Key of :data:`ANNOTATORS`.
        mask_folder (str): Label folder inside the annotator folder.
        label_dir (PathLike, optional): Explicit folder (absolute or
            relative to ``src``); overrides the two above.

    Returns:
        Path: The folder.

    Raises:
        SourceLayoutError: Naming the folders tried.
    """
    src = Path(src)
    if label_dir is not None:
        path = Path(label_dir)
        path = path if path.is_absolute() else src / path
        if not path.is_dir():
            raise SourceLayoutError(f'label folder not found: {path}')
        return path
    if annotation not in ANNOTATORS:
        raise ValueError(f'unknown CryoNuSeg annotation {annotation!r}; '
                         f'choose from {sorted(ANNOTATORS)}')
    name = ANNOTATORS[annotation]
    tried = []
    for base in (src / name / name, src / name):
        cand = find_subdir(base, [mask_folder])
        tried.append(str(base / mask_folder))
        if cand is not None:
            return cand
    raise SourceLayoutError(
        f'CryoNuSeg label folder for {annotation!r} not found; tried: ' +
        ', '.join(tried) + ' (pass label_dir / --label-dir)')


def find_cryonuseg_samples(src: PathLike,
                           split: str = 'all',
                           annotation: str = 'ann1',
                           mask_folder: str = 'label masks modify',
                           label_dir: Optional[PathLike] = None,
                           skip_missing: bool = False
                           ) -> Tuple[List[Sample], List[str]]:
    """Find image/label pairs (arguments as in :func:`convert_cryonuseg`).

    Returns:
        tuple: samples (named by image stem) and skipped stems.
    """
    src = Path(src)
    img_dir = find_subdir(src, ['tissue images', 'images'])
    if img_dir is None:
        raise SourceLayoutError(
            f'{src} has no "tissue images" folder (CryoNuSeg layout)')
    lab_dir = find_cryonuseg_label_dir(src, annotation, mask_folder,
                                       label_dir)
    labels = {p.stem: p for p in list_files(lab_dir, ('.tif', '.tiff',
                                                      '.png'))}
    pairs, skipped = pair_by_stem(
        list_files(img_dir), labels, skip_missing,
        expected=str(lab_dir / '<stem>.tif'))
    return [Sample(i.stem, i, lab, split) for i, lab in pairs], skipped


def convert_cryonuseg_sample(sample: Sample,
                             out_root: PathLike) -> SampleResult:
    """Convert one CryoNuSeg pair (instance TIFF renumbered ``1..N``)."""
    image = read_image(sample.image)
    label = relabel_sequential(read_label(sample.annotation))
    num = write_sample(out_root, sample.name, image, label, sample.image,
                       sample.annotation)
    return SampleResult(sample.name, sample.split, num, label.shape)


def convert_cryonuseg(src: PathLike,
                      out_root: PathLike,
                      split: str = 'all',
                      annotation: str = 'ann1',
                      mask_folder: str = 'label masks modify',
                      label_dir: Optional[PathLike] = None,
                      split_files: Optional[Sequence[PathLike]] = None,
                      nproc: int = 1,
                      skip_missing: bool = False,
                      show_progress: bool = False) -> ConversionSummary:
    """Convert a CryoNuSeg source folder (see the module doc).

    Args:
        src: CryoNuSeg root.
        out_root: Output root.
        split (str): Split name for every image (default ``'all'``).
        annotation (str): Annotator key of :data:`ANNOTATORS`.
        mask_folder (str): Instance-label folder inside the annotator's.
        label_dir (PathLike, optional): Explicit instance-label folder.
        split_files (Sequence, optional): Extra split lists.
        nproc (int): Processes.
        skip_missing (bool): Skip images without label (default: raise).
        show_progress (bool): Show a progress bar.

    Returns:
        ConversionSummary: What was written.
    """
    samples, skipped = find_cryonuseg_samples(src, split, annotation,
                                              mask_folder, label_dir,
                                              skip_missing)
    return run_conversion(
        'CryoNuSeg',
        samples,
        partial(convert_cryonuseg_sample, out_root=out_root),
        out_root,
        split_files=split_files,
        nproc=nproc,
        show_progress=show_progress,
        skipped=skipped)
