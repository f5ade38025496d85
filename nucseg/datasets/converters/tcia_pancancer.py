"""TCIA Pan-Cancer-Nuclei-Seg manual patches (Hou et al., Sci. Data 2020).

The 1,356 manually segmented TCGA H&E patches of 14 cancer types
(doi 10.7937/tcia.2019.4a4dkp9u; ``manual_segmentation_data.tar.gz``),
extracted in any folder structure::

    SRC/**/<id>_crop.png                    RGB(A) image patch
    SRC/**/<id>_labeled_mask_corrected.png  instance label map
    (SRC/**/<id>_labeled_mask_common<k>.png, per-annotator maps: ignored)

The cancer type of a patch comes from the crosswalk table TCIA publishes
next to the data (``Pan-Cancer-Nuclei-Seg_1365patches_to_TCGA-ID_readme.txt``:
a text header, then CSV lines from the header ``Patch-ID,...,CancerType``;
a ``table.csv`` with an id column and ``CancerType`` works too), given as
``table`` or found in ``SRC`` (``*.csv`` / ``*.txt`` holding a
``CancerType`` header), or else from a parent folder named after the
cancer type (``stad/``). ``cancer_types`` keeps a subset: the
self-ensembling UDA paper uses the 97 STAD patches (``('stad',)``).

Label maps are renumbered ``1..N``; a map with a single non-zero value is
split into its connected components. Outputs are named ``<type>_<id>``
(``<id>`` when the type is unknown). All converted samples are listed in
``splits/all.txt`` plus the seeded ``train``/``val``/``test`` split
(default 80/10/10, seed 0).
"""
import csv
import io
import os
from functools import partial
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

from nucseg.utils.io import read_image, read_label
from .errors import MissingAnnotationError, SourceLayoutError
from .kirc import mask_to_instances
from .layout import Sample, write_sample
from .runner import ConversionSummary, SampleResult
from .splits import run_with_seeded_splits

PathLike = Union[str, os.PathLike]

__all__ = [
    'TCIA_CANCER_TYPES', 'read_cancer_type_table', 'find_tcia_samples',
    'convert_tcia_sample', 'convert_tcia_pancancer'
]

#: The 14 TCGA cancer types of the manual patches (lower case).
TCIA_CANCER_TYPES = ('blca', 'brca', 'cesc', 'coad', 'gbm', 'luad', 'lusc',
                     'paad', 'prad', 'read', 'skcm', 'stad', 'ucec', 'uvm')
IMAGE_SUFFIX = '_crop'
MASK_SUFFIX = '_labeled_mask_corrected'
_ID_COLUMNS = ('patch-id', 'patch_id', 'patchid', 'id')


def read_cancer_type_table(path: PathLike) -> Dict[str, str]:
    """Patch id -> cancer type (lower case) from a crosswalk table.

    The CSV part starts at the first line holding a ``CancerType`` column
    (text before it, as in TCIA's readme, is skipped). The id column is
    ``Patch-ID`` (or ``patch_id`` / ``id``), else the first column.

    Raises:
        SourceLayoutError: No ``CancerType`` header in the file.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding='utf-8', errors='replace')
    except OSError as err:
        raise SourceLayoutError(f'cannot read cancer-type table {path}: '
                                f'{err}') from err
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines)
                  if 'cancertype' in line.lower().replace(' ', '')), None)
    if start is None:
        raise SourceLayoutError(
            f'{path} has no CancerType column header (expected the TCIA '
            'crosswalk "Patch-ID,...,CancerType" or a table.csv)')
    rows = list(csv.reader(io.StringIO('\n'.join(lines[start:]))))
    header = [h.strip().lower().replace(' ', '') for h in rows[0]]
    type_col = header.index('cancertype')
    id_col = next((header.index(c) for c in _ID_COLUMNS if c in header), 0)
    table = {}
    for row in rows[1:]:
        if len(row) <= max(type_col, id_col) or not row[id_col].strip():
            continue
        table[row[id_col].strip()] = row[type_col].strip().lower()
    return table


def _find_table(src: Path) -> Optional[Path]:
    candidates = sorted(
        p for pattern in ('*.csv', '*.txt', '*/*.csv', '*/*.txt')
        for p in src.glob(pattern) if p.is_file())
    for path in candidates:
        try:
            head = path.read_text(encoding='utf-8', errors='replace')
        except OSError:
            continue
        if 'cancertype' in head.lower().replace(' ', ''):
            return path
    return None


def _type_from_parents(path: Path, src: Path) -> Optional[str]:
    """The nearest folder between ``src`` and ``path`` named after a type."""
    for part in reversed(path.relative_to(src).parts[:-1]):
        if part.lower() in TCIA_CANCER_TYPES:
            return part.lower()
    return None


def find_tcia_samples(src: PathLike,
                      cancer_types: Optional[Sequence[str]] = None,
                      table: Optional[PathLike] = None,
                      skip_missing: bool = False
                      ) -> Tuple[List[Sample], List[str]]:
    """Find the patches (of the wanted cancer types) of a source folder.

    Args:
        src: Extracted ``manual_segmentation_data`` folder.
        cancer_types (Sequence[str], optional): Keep these types only
            (e.g. ``('stad',)``); None keeps every patch.
        table (path, optional): Crosswalk table (default: found in
            ``src``).
        skip_missing (bool): Skip patches without a corrected mask
            (default: raise).

    Returns:
        tuple: samples (split ``'all'``) and skipped patch ids.

    Raises:
        SourceLayoutError: No patches, an unknown cancer type requested, a
            filter that cannot be applied (type of a patch unknown) or one
            that keeps nothing.
        MissingAnnotationError: A patch without mask (``skip_missing``
            False).
    """
    src = Path(src)
    if not src.is_dir():
        raise SourceLayoutError(f'TCIA source folder not found: {src}')
    wanted = None
    if cancer_types is not None:
        wanted = {t.lower() for t in cancer_types}
        unknown = sorted(wanted - set(TCIA_CANCER_TYPES))
        if unknown:
            raise SourceLayoutError(
                f'unknown cancer type(s) {unknown}; expected some of '
                f'{list(TCIA_CANCER_TYPES)}')
    images = sorted(p for p in src.rglob(f'*{IMAGE_SUFFIX}.png')
                    if p.is_file() and not p.name.startswith('.'))
    if not images:
        raise SourceLayoutError(
            f'{src} has no <id>{IMAGE_SUFFIX}.png patches (TCIA '
            'Pan-Cancer-Nuclei-Seg manual_segmentation_data layout)')
    table_path = Path(table) if table is not None else _find_table(src)
    types = read_cancer_type_table(table_path) if table_path else {}
    samples, skipped, untyped = [], [], []
    for img in images:
        pid = img.name[:-len(f'{IMAGE_SUFFIX}.png')]
        ctype = types.get(pid) or _type_from_parents(img, src)
        if wanted is not None:
            if ctype is None:
                untyped.append(str(img))
                continue
            if ctype not in wanted:
                continue
        mask = img.with_name(f'{pid}{MASK_SUFFIX}.png')
        if not mask.is_file():
            if not skip_missing:
                raise MissingAnnotationError(
                    f'no annotation for patch {img}: expected {mask} (pass '
                    'skip_missing / --skip-missing to skip such patches)')
            skipped.append(pid)
            continue
        name = f'{ctype}_{pid}' if ctype else pid
        samples.append(Sample(name, img, mask, 'all'))
    if untyped:
        raise SourceLayoutError(
            f'cannot filter by cancer type: the type of {len(untyped)} '
            f'patch(es) is unknown (e.g. {untyped[0]}); give the TCIA '
            'crosswalk table (table=/--table) or put patches in folders '
            'named after their type')
    if not samples and not skipped:
        raise SourceLayoutError(
            f'no patch of cancer type(s) {sorted(wanted or [])} in {src}')
    return samples, skipped


def convert_tcia_sample(sample: Sample, out_root: PathLike) -> SampleResult:
    """Convert one patch (labels renumbered, see :func:`mask_to_instances`).
    """
    image = read_image(sample.image)
    label = mask_to_instances(read_label(sample.annotation))
    num = write_sample(out_root, sample.name, image, label, sample.image,
                       sample.annotation)
    return SampleResult(sample.name, sample.split, num, label.shape)


def convert_tcia_pancancer(src: PathLike,
                           out_root: PathLike,
                           cancer_types: Optional[Sequence[str]] = None,
                           table: Optional[PathLike] = None,
                           ratios: Optional[Sequence[float]] = (0.8, 0.1,
                                                                0.1),
                           seed: int = 0,
                           split_files: Optional[Sequence[PathLike]] = None,
                           nproc: int = 1,
                           skip_missing: bool = False,
                           show_progress: bool = False
                           ) -> ConversionSummary:
    """Convert the TCIA Pan-Cancer manual patches (see the module doc).

    Args:
        src: Extracted ``manual_segmentation_data`` folder.
        out_root: Output root.
        cancer_types (Sequence[str], optional): Types to keep (the paper:
            ``('stad',)``).
        table (path, optional): Crosswalk table.
        ratios (Sequence[float], optional): Seeded train/val/test ratios
            (None: only ``splits/all.txt``).
        seed (int): Seed of the split.
        split_files (Sequence, optional): Extra split lists.
        nproc (int): Processes.
        skip_missing (bool): Skip patches without mask.
        show_progress (bool): Show a progress bar.

    Returns:
        ConversionSummary: What was written.

    Raises:
        IncompleteConversionError: Some patches failed; the others and
            their splits were written.
    """
    samples, skipped = find_tcia_samples(src, cancer_types, table,
                                         skip_missing)
    name = 'TCIA Pan-Cancer' + (
        f' ({",".join(sorted(cancer_types))})' if cancer_types else '')
    return run_with_seeded_splits(
        name, samples, partial(convert_tcia_sample, out_root=out_root),
        out_root, ratios, seed, split_files, nproc, show_progress, skipped)
