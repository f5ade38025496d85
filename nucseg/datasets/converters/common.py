"""Shared helpers of the data set converters.

Every converter turns a public data set, in the layout its authors
distribute, into nucseg's on-disk convention::

    <out>/images/<name>.png   RGB uint8
    <out>/labels/<name>.png   uint16 instance map, 0 = background,
                              ids renumbered 1..N
    <out>/splits/<split>.txt  one <name> per line

This module holds what the converters share: the sample records, the
painting of (possibly overlapping) instance masks into one label map, the
connected-component labelling of binary or colour-coded masks, writing a
sample and its split files, and running the per-sample work with an
optional progress bar and several processes.

It depends on numpy, OpenCV and SciPy only (mmengine is used for the
progress bar when it can be imported), so converters work without torch.
"""
import argparse
import os
import sys
import warnings
from dataclasses import dataclass, field
from multiprocessing import Pool
from pathlib import Path
from typing import (Any, Callable, Dict, Iterable, List, Optional, Sequence,
                    Tuple, Union)

import numpy as np
from scipy import ndimage

from nucseg.utils.io import LabelError, check_pair, write_image, write_label

PathLike = Union[str, os.PathLike]

#: Largest instance id a uint16 label PNG can hold.
MAX_INSTANCES = 65535

#: Image file extensions converters look for (lower case).
IMAGE_EXTENSIONS = ('.png', '.tif', '.tiff', '.jpg', '.jpeg', '.bmp')

__all__ = [
    'MAX_INSTANCES', 'IMAGE_EXTENSIONS', 'SourceLayoutError',
    'MissingAnnotationError', 'AnnotationError', 'Sample', 'SampleResult',
    'ConversionSummary', 'PaintReport', 'relabel_sequential',
    'check_instance_count', 'paint_instances', 'label_components',
    'label_by_value', 'write_sample', 'write_split', 'read_split_file',
    'copy_split_files', 'list_files', 'find_subdir', 'pair_by_stem',
    'map_samples', 'run_conversion', 'add_common_cli_args', 'run_cli'
]


class SourceLayoutError(FileNotFoundError):
    """The source folder does not have the layout the data set uses."""


class MissingAnnotationError(FileNotFoundError):
    """An image of the source has no annotation file."""


class AnnotationError(ValueError):
    """An annotation file is malformed (bad XML, RLE, .mat content...)."""


@dataclass
class Sample:
    """One source sample to convert.

    Attributes:
        name (str): Output name (``<out>/images/<name>.png``).
        image (Path): Source image file.
        annotation (Any): Source annotation: a path, a list of paths or
            format-specific data (e.g. RLE strings); must be picklable.
        split (str): Split the sample belongs to.
        extra (dict): Format-specific options.
    """
    name: str
    image: Path
    annotation: Any
    split: str
    extra: Dict[str, Any] = field(default_factory=dict)


@dataclass
class PaintReport:
    """What :func:`paint_instances` did with its input regions.

    Attributes:
        names (list[str]): Name of each input region (for messages).
        ids (np.ndarray): ``(R,)`` int32 output id of each input region,
            0 if the region could not be kept.
        num_overlapping (int): Regions sharing >= 1 pixel with another.
        num_overlap_pairs (int): Pairs of regions sharing >= 1 pixel.
        contested_pixels (int): Pixels covered by two or more regions.
        restored (list[int]): Regions hidden completely by smaller ones
            that got pixels given back (see :func:`paint_instances`).
        dropped (list[tuple[int, str]]): ``(region index, reason)`` of the
            regions that could not be kept.
        degenerate (list[int]): Regions rasterised from their vertices
            because their polygon has no area (set by polygon converters).
    """
    names: List[str]
    ids: np.ndarray
    num_overlapping: int = 0
    num_overlap_pairs: int = 0
    contested_pixels: int = 0
    restored: List[int] = field(default_factory=list)
    dropped: List[Tuple[int, str]] = field(default_factory=list)
    degenerate: List[int] = field(default_factory=list)

    @property
    def num_regions(self) -> int:
        """Number of input regions."""
        return len(self.names)

    @property
    def num_kept(self) -> int:
        """Number of regions present in the label map."""
        return int(np.count_nonzero(self.ids))

    def as_dict(self) -> Dict[str, Any]:
        """Summary counts and the names of restored/dropped regions."""
        return dict(
            regions=self.num_regions,
            kept=self.num_kept,
            overlapping=self.num_overlapping,
            overlap_pairs=self.num_overlap_pairs,
            contested_pixels=self.contested_pixels,
            restored=[self.names[i] for i in self.restored],
            degenerate=[self.names[i] for i in self.degenerate],
            dropped=[(self.names[i], why) for i, why in self.dropped])


@dataclass
class SampleResult:
    """Outcome of converting one sample.

    Attributes:
        name (str): Output name.
        split (str): Split of the sample.
        num_instances (int): Instances in the written label map.
        shape (tuple[int, int]): ``(H, W)`` of the written pair.
        report (dict): Format-specific counts (e.g.
            :meth:`PaintReport.as_dict`).
    """
    name: str
    split: str
    num_instances: int
    shape: Tuple[int, int]
    report: Dict[str, Any] = field(default_factory=dict)


@dataclass
class ConversionSummary:
    """Outcome of a whole conversion.

    Attributes:
        dataset (str): Data set name.
        out_root (Path): Output root.
        results (list[SampleResult]): One per converted sample.
        splits (dict[str, list[str]]): Split files written.
        skipped (list[str]): Source images skipped (``skip_missing``).
    """
    dataset: str
    out_root: Path
    results: List[SampleResult] = field(default_factory=list)
    splits: Dict[str, List[str]] = field(default_factory=dict)
    skipped: List[str] = field(default_factory=list)

    @property
    def num_instances(self) -> int:
        """Total number of instances written."""
        return sum(r.num_instances for r in self.results)

    def total(self, key: str) -> int:
        """Sum of a count over the per-sample reports (missing = 0).

        List-valued entries (e.g. ``dropped``) are counted by length.
        """
        total = 0
        for r in self.results:
            value = r.report.get(key, 0)
            total += len(value) if isinstance(value, (list, tuple)) else int(
                value)
        return total

    def lines(self) -> List[str]:
        """Human-readable summary, one line per fact."""
        out = [
            f'{self.dataset}: wrote {len(self.results)} samples with '
            f'{self.num_instances} instances to {self.out_root}'
        ]
        for split, names in self.splits.items():
            out.append(f'  split {split!r}: {len(names)} names '
                       f'(splits/{split}.txt)')
        if self.skipped:
            out.append(f'  skipped {len(self.skipped)} images without '
                       f'annotation: {", ".join(self.skipped)}')
        keys = ('overlapping', 'overlap_pairs', 'restored', 'degenerate',
                'dropped')
        if any(k in r.report for r in self.results for k in keys):
            out.append(
                '  regions: {} in total, {} overlap another ({} pairs), '
                '{} fully hidden and restored, {} degenerate, {} dropped'.
                format(
                    self.total('regions'), self.total('overlapping'),
                    self.total('overlap_pairs'), self.total('restored'),
                    self.total('degenerate'), self.total('dropped')))
        for r in self.results:
            for item in r.report.get('dropped', []):
                out.append(f'  DROPPED {r.name}: {item}')
        return out


def relabel_sequential(label: np.ndarray) -> np.ndarray:
    """Renumber the non-zero ids of a label map to ``1..N``.

    Ids keep their relative order (the smallest old id becomes 1).

    Args:
        label (np.ndarray): ``HxW`` non-negative integer label map.

    Returns:
        np.ndarray: ``HxW`` int32 map with ids ``1..N``, 0 = background.
    """
    label = np.asarray(label)
    ids, inverse = np.unique(label, return_inverse=True)
    if ids.size and ids[0] == 0:
        new = np.arange(ids.size, dtype=np.int64)
    else:
        new = np.arange(1, ids.size + 1, dtype=np.int64)
    if new.size and new[-1] > np.iinfo(np.int32).max:
        raise LabelError('too many instance ids for int32')
    return new[inverse.reshape(label.shape)].astype(np.int32)


def check_instance_count(num: int, source: PathLike) -> None:
    """Raise :class:`LabelError` if ``num`` ids do not fit a uint16 PNG.

    Args:
        num (int): Number of instances (largest id after renumbering).
        source: Source annotation named in the message.
    """
    if num > MAX_INSTANCES:
        raise LabelError(
            f'{os.fspath(source)}: {num} instances do not fit the uint16 '
            f'label PNG of the nucseg convention (max {MAX_INSTANCES} ids)')


def _split_pixels(pixels: np.ndarray, width: int) -> Tuple[np.ndarray,
                                                           np.ndarray]:
    """Split flat pixel indices in two halves along their longer axis.

    Returns ``(first, second)``; ``first`` holds ``ceil(n / 2)`` pixels.
    """
    rows, cols = np.divmod(pixels, width)
    if np.ptp(cols) >= np.ptp(rows):
        order = np.lexsort((rows, cols))
    else:
        order = np.lexsort((cols, rows))
    half = (pixels.size + 1) // 2
    return pixels[order[:half]], pixels[order[half:]]


def paint_instances(
        pixel_sets: Sequence[np.ndarray],
        shape: Tuple[int, int],
        names: Optional[Sequence[str]] = None
) -> Tuple[np.ndarray, PaintReport]:
    """Paint possibly overlapping instance regions into one label map.

    Rule (deterministic):

    1. Regions are painted from the largest to the smallest (ties in input
       order), so where regions overlap the smaller one wins: a small
       nucleus drawn over a large one stays visible.
    2. A region left with no visible pixel (every pixel it covers is
       owned by smaller regions, e.g. an exact duplicate or a region tiled
       by its neighbours) gets pixels given back, smallest such region
       first: from every region that owns some of its pixels it takes
       those pixels if that region keeps at least one pixel elsewhere;
       otherwise (the owner lies entirely inside it, e.g. a duplicate)
       the shared pixels are split in two halves along their longer axis
       and it takes the second half. Only an owner with a single pixel
       cannot give anything.
    3. A region that still has no pixel (it lies entirely outside the
       image, is empty, or is a one-pixel duplicate) is dropped and
       listed in :attr:`PaintReport.dropped`; nothing is dropped silently.

    Output ids follow input order: the k-th kept region gets id k.

    Args:
        pixel_sets (Sequence[np.ndarray]): One 1-D array of flat (row-major)
            pixel indices ``row * W + col`` per region; duplicates inside
            one array are allowed.
        shape (tuple[int, int]): ``(H, W)`` of the label map.
        names (Sequence[str], optional): Region names for the report.
            Defaults to the input positions.

    Returns:
        tuple[np.ndarray, PaintReport]: ``HxW`` int32 label map with ids
        ``1..N`` and the report.
    """
    h, w = int(shape[0]), int(shape[1])
    n = len(pixel_sets)
    names = [str(i) for i in range(n)] if names is None else list(names)
    if len(names) != n:
        raise ValueError(f'{len(names)} names for {n} regions')
    sets = []
    for i, pix in enumerate(pixel_sets):
        pix = np.unique(np.asarray(pix, dtype=np.int64).ravel())
        if pix.size and (pix[0] < 0 or pix[-1] >= h * w):
            raise ValueError(f'region {names[i]}: pixel index out of range')
        sets.append(pix)
    areas = np.array([s.size for s in sets], dtype=np.int64)
    report = PaintReport(names=names, ids=np.zeros(n, dtype=np.int32))

    # Overlap statistics from the coverage of every pixel.
    if n:
        all_pix = np.concatenate(sets)
        owner_of = np.repeat(np.arange(n), areas)
        order = np.argsort(all_pix, kind='stable')
        all_pix, owner_of = all_pix[order], owner_of[order]
        dup = np.zeros(all_pix.size, dtype=bool)
        if all_pix.size > 1:
            same = all_pix[1:] == all_pix[:-1]
            dup[1:] |= same
            dup[:-1] |= same
        report.contested_pixels = int(np.unique(all_pix[dup]).size)
        report.num_overlapping = int(np.unique(owner_of[dup]).size)
        pairs = set()
        if dup.any():
            pix_c, own_c = all_pix[dup], owner_of[dup]
            starts = np.flatnonzero(np.r_[True, pix_c[1:] != pix_c[:-1]])
            ends = np.r_[starts[1:], pix_c.size]
            groups = {tuple(own_c[s:e]) for s, e in zip(starts, ends)}
            for group in groups:
                for a in range(len(group)):
                    for b in range(a + 1, len(group)):
                        pairs.add((group[a], group[b]))
        report.num_overlap_pairs = len(pairs)

    # 1. Larger regions first so that smaller ones win.
    canvas = np.zeros(h * w, dtype=np.int64)  # region index + 1
    for i in sorted(range(n), key=lambda k: (-areas[k], k)):
        canvas[sets[i]] = i + 1
    counts = np.bincount(canvas, minlength=n + 1)

    # 2. Give pixels back to fully hidden regions, smallest first.
    hidden = [i for i in range(n) if areas[i] > 0 and counts[i + 1] == 0]
    for i in sorted(hidden, key=lambda k: (areas[k], k)):
        pix = sets[i]
        owners = canvas[pix]
        for o in np.unique(owners):
            shared = pix[owners == o]
            if counts[o] - shared.size >= 1:
                take = shared
            elif shared.size >= 2:
                take = _split_pixels(shared, w)[1]
            else:
                continue
            canvas[take] = i + 1
            counts[o] -= take.size
            counts[i + 1] += take.size
        if counts[i + 1] > 0:
            report.restored.append(i)

    # 3. Number the kept regions in input order; report the others.
    lut = np.zeros(n + 1, dtype=np.int64)
    next_id = 1
    for i in range(n):
        if counts[i + 1] > 0:
            lut[i + 1] = next_id
            report.ids[i] = next_id
            next_id += 1
        elif areas[i] == 0:
            report.dropped.append((i, 'no pixel inside the image'))
        else:
            report.dropped.append(
                (i, 'hidden by other regions; no pixel could be given back'))
    label = lut[canvas].reshape(h, w).astype(np.int32)
    return label, report


def _structure(connectivity: int) -> np.ndarray:
    if connectivity == 4:
        return ndimage.generate_binary_structure(2, 1)
    if connectivity == 8:
        return ndimage.generate_binary_structure(2, 2)
    raise ValueError(f'connectivity must be 4 or 8, got {connectivity}')


def label_components(mask: np.ndarray, connectivity: int = 4) -> np.ndarray:
    """Label the connected components of a binary mask.

    Args:
        mask (np.ndarray): ``HxW`` mask; non-zero = foreground.
        connectivity (int): 4 (edge neighbours) or 8 (edges and corners).

    Returns:
        np.ndarray: ``HxW`` int32 instance map, ids ``1..N`` in raster
        order of each component's first pixel.
    """
    label, _ = ndimage.label(
        np.asarray(mask) != 0, structure=_structure(connectivity))
    return label.astype(np.int32)


def label_by_value(code: np.ndarray, connectivity: int = 8) -> np.ndarray:
    """Instances of a colour-coded mask: components of equal value.

    Some data sets (e.g. BBBC039) reuse a few values for all objects and
    only give touching objects different values; every connected region of
    one non-zero value is one instance.

    Args:
        code (np.ndarray): ``HxW`` integer map, 0 = background.
        connectivity (int): 4 or 8.

    Returns:
        np.ndarray: ``HxW`` int32 instance map with ids ``1..N``.
    """
    code = np.asarray(code)
    out = np.zeros(code.shape, dtype=np.int32)
    structure = _structure(connectivity)
    offset = 0
    for value in np.unique(code):
        if value == 0:
            continue
        comp, num = ndimage.label(code == value, structure=structure)
        out[comp > 0] = comp[comp > 0] + offset
        offset += num
    return relabel_sequential(out)


def write_sample(out_root: PathLike, name: str, image: np.ndarray,
                 label: np.ndarray, image_src: PathLike,
                 label_src: PathLike) -> int:
    """Check and write one converted pair in the nucseg convention.

    Args:
        out_root: Output root.
        name (str): Output name.
        image (np.ndarray): ``HxWx3`` uint8 RGB image.
        label (np.ndarray): ``HxW`` integer instance map with ids ``1..N``.
        image_src: Source image (named in errors).
        label_src: Source annotation (named in errors).

    Returns:
        int: Number of instances written.

    Raises:
        LabelError: If sizes differ or ids do not fit uint16.
    """
    check_pair(image, label, os.fspath(image_src), os.fspath(label_src))
    num = int(label.max()) if label.size else 0
    check_instance_count(num, label_src)
    out_root = Path(out_root)
    write_image(out_root / 'images' / f'{name}.png', image)
    write_label(out_root / 'labels' / f'{name}.png', label)
    return int(np.count_nonzero(np.bincount(label.ravel())[1:]))


def write_split(out_root: PathLike, split: str,
                names: Iterable[str]) -> List[str]:
    """Write ``<out_root>/splits/<split>.txt`` (sorted, one name a line).

    An existing file of that name is replaced.

    Returns:
        list[str]: The names written.
    """
    names = sorted(set(names))
    path = Path(out_root) / 'splits' / f'{split}.txt'
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(''.join(f'{n}\n' for n in names))
    return names


def read_split_file(path: PathLike) -> List[str]:
    """Read names from a split list (blank lines and ``#`` comments skipped).

    A trailing image extension (``.png``, ``.tif``...) is removed, so lists
    of file names such as BBBC039's ``metadata/*.txt`` work too.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'split file not found: {path}')
    names = []
    for line in path.read_text().splitlines():
        line = line.split('#', 1)[0].strip()
        if not line:
            continue
        stem, ext = os.path.splitext(line)
        names.append(stem if ext.lower() in IMAGE_EXTENSIONS else line)
    return names


def copy_split_files(out_root: PathLike,
                     split_files: Sequence[PathLike]) -> Dict[str, List[str]]:
    """Write user split lists as ``splits/<file stem>.txt``.

    Every listed name must exist as ``<out_root>/images/<name>.png``.

    Raises:
        FileNotFoundError: Naming the split file and the missing names.
    """
    written = {}
    for path in split_files:
        names = read_split_file(path)
        missing = [
            n for n in names
            if not (Path(out_root) / 'images' / f'{n}.png').is_file()
        ]
        if missing:
            raise FileNotFoundError(
                f'split file {os.fspath(path)} lists {len(missing)} names '
                f'that are not converted in {os.fspath(out_root)}: '
                f'{", ".join(missing[:5])}' +
                (' ...' if len(missing) > 5 else ''))
        split = Path(path).stem
        written[split] = write_split(out_root, split, names)
    return written


def list_files(folder: PathLike,
               extensions: Sequence[str] = IMAGE_EXTENSIONS) -> List[Path]:
    """Files of ``folder`` (not recursive) with one of ``extensions``.

    Hidden files (``.``-prefixed, e.g. macOS ``._*`` forks) are ignored.
    """
    exts = tuple(e.lower() for e in extensions)
    return sorted(p for p in Path(folder).iterdir()
                  if p.is_file() and not p.name.startswith('.')
                  and p.suffix.lower() in exts)


def find_subdir(root: PathLike, candidates: Sequence[str]) -> Optional[Path]:
    """First sub-folder of ``root`` matching a candidate name.

    Names are compared case-insensitively, ignoring spaces, ``_`` and
    ``-`` (``Tissue Images`` matches ``tissue_images``).
    """
    def key(s: str) -> str:
        return ''.join(c for c in s.lower() if c not in ' _-')

    root = Path(root)
    if not root.is_dir():
        return None
    subdirs = {key(p.name): p for p in sorted(root.iterdir()) if p.is_dir()}
    for cand in candidates:
        if key(cand) in subdirs:
            return subdirs[key(cand)]
    return None


def pair_by_stem(images: Sequence[Path],
                 annotations: Dict[str, Path],
                 skip_missing: bool = False,
                 expected: str = '<stem>') -> Tuple[List[Tuple[Path, Path]],
                                                    List[str]]:
    """Pair each image with the annotation of the same stem.

    Args:
        images (Sequence[Path]): Source images.
        annotations (dict[str, Path]): Annotation file by stem.
        skip_missing (bool): Skip (and return) images without annotation
            instead of raising.
        expected (str): Description of the expected annotation file used
            in the error message (``<stem>`` is replaced by the stem).

    Returns:
        tuple: ``[(image, annotation), ...]`` and the stems skipped.

    Raises:
        MissingAnnotationError: If an image has no annotation and
            ``skip_missing`` is False.
    """
    pairs, skipped = [], []
    for img in images:
        ann = annotations.get(img.stem)
        if ann is None:
            if not skip_missing:
                raise MissingAnnotationError(
                    f'no annotation for image {img}: expected '
                    f'{expected.replace("<stem>", img.stem)} (pass '
                    'skip_missing / --skip-missing to skip such images)')
            warnings.warn(f'skipping {img}: no annotation')
            skipped.append(img.stem)
            continue
        pairs.append((img, ann))
    return pairs, skipped


def _check_unique_names(samples: Sequence[Sample]) -> None:
    seen: Dict[str, Sample] = {}
    for s in samples:
        if s.name in seen:
            raise SourceLayoutError(
                f'two source images map to the output name {s.name!r}: '
                f'{seen[s.name].image} and {s.image}')
        seen[s.name] = s


def map_samples(func: Callable[[Any], Any],
                items: Sequence[Any],
                nproc: int = 1,
                show_progress: bool = False) -> List[Any]:
    """Apply ``func`` to every item, in order, in ``nproc`` processes.

    Uses mmengine's progress bar when ``show_progress`` is set and mmengine
    can be imported; a plain loop (or ``multiprocessing.Pool``) otherwise.
    ``func`` must be picklable when ``nproc > 1``.
    """
    items = list(items)
    nproc = max(1, int(nproc))
    track = track_parallel = None
    if show_progress and items:
        try:
            from mmengine.utils import (track_parallel_progress,
                                        track_progress)
        except ImportError:
            pass
        else:
            track, track_parallel = track_progress, track_parallel_progress
    if nproc > 1 and len(items) > 1:
        if track_parallel is not None:
            return list(track_parallel(func, items, nproc))
        with Pool(min(nproc, len(items))) as pool:
            return pool.map(func, items, chunksize=1)
    if track is not None:
        return list(track(func, items))
    return [func(x) for x in items]


def run_conversion(dataset: str,
                   samples: Sequence[Sample],
                   convert_fn: Callable[[Sample], SampleResult],
                   out_root: PathLike,
                   split_files: Optional[Sequence[PathLike]] = None,
                   nproc: int = 1,
                   show_progress: bool = False,
                   skipped: Optional[List[str]] = None) -> ConversionSummary:
    """Convert samples, write one split file per split, then user splits.

    Args:
        dataset (str): Data set name for the summary.
        samples (Sequence[Sample]): Samples (names must be unique).
        convert_fn (Callable): Picklable ``Sample -> SampleResult``.
        out_root: Output root.
        split_files (Sequence, optional): Extra split lists, written as
            ``splits/<file stem>.txt`` (see :func:`copy_split_files`).
        nproc (int): Processes.
        show_progress (bool): Show a progress bar (mmengine) if available.
        skipped (list[str], optional): Source images skipped beforehand.

    Returns:
        ConversionSummary: What was written.
    """
    if not samples:
        raise SourceLayoutError(f'{dataset}: no samples found to convert')
    _check_unique_names(samples)
    out_root = Path(out_root)
    results = map_samples(convert_fn, samples, nproc, show_progress)
    summary = ConversionSummary(
        dataset=dataset,
        out_root=out_root,
        results=results,
        skipped=list(skipped or []))
    by_split: Dict[str, List[str]] = {}
    for r in results:
        by_split.setdefault(r.split, []).append(r.name)
    for split, names in by_split.items():
        summary.splits[split] = write_split(out_root, split, names)
    if split_files:
        summary.splits.update(copy_split_files(out_root, split_files))
    return summary


def add_common_cli_args(parser: argparse.ArgumentParser) -> None:
    """Add the arguments every converter command line shares.

    ``src`` and ``out`` (positional), ``--split-file``, ``--nproc`` and
    ``--skip-missing``.
    """
    parser.add_argument('src', help='source folder, as distributed')
    parser.add_argument('out', help='output root (nucseg convention)')
    parser.add_argument(
        '--split-file',
        nargs='+',
        default=None,
        metavar='FILE',
        help='extra split lists (one name a line); each is written as '
        'splits/<file stem>.txt after checking the names were converted')
    parser.add_argument(
        '--nproc', type=int, default=1, help='number of processes')
    parser.add_argument(
        '--skip-missing',
        action='store_true',
        help='skip images without annotation (default: stop with an error)')


def run_cli(convert: Callable[[], ConversionSummary]) -> int:
    """Run a conversion for a command line and print its summary.

    Input problems (``OSError``/``ValueError``, e.g. a missing folder, a
    malformed annotation or a size mismatch; the message names the file)
    are printed as ``error: ...`` on stderr.

    Returns:
        int: Exit status (0 = success, 1 = input error).
    """
    try:
        summary = convert()
    except (OSError, ValueError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    print('\n'.join(summary.lines()))
    return 0
