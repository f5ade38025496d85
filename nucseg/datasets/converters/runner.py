"""Running a conversion: per-sample work, split files, summary, CLI.

:func:`run_conversion` applies a converter's per-sample function (in
several processes and with a progress bar when asked), writes one split
file per split and returns a :class:`ConversionSummary`;
:func:`add_common_cli_args` and :func:`run_cli` are shared by the command
lines in ``tools/dataset_converters/``.

Like the rest of the converters it does not need torch: mmengine is used
for the progress bar only when it can be imported.
"""
import argparse
import os
import sys
from dataclasses import dataclass, field
from multiprocessing import Pool
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

from .errors import IncompleteConversionError, SourceLayoutError
from .layout import Sample, copy_split_files, write_split

PathLike = Union[str, os.PathLike]

__all__ = [
    'SampleResult', 'SampleFailure', 'ConversionSummary', 'map_samples',
    'run_conversion', 'add_common_cli_args', 'run_cli'
]


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
class SampleFailure:
    """A sample that could not be converted.

    Attributes:
        name (str): Output name of the sample.
        source (str): Its source image (and annotation).
        error (str): Why (exception type and message).
    """
    name: str
    source: str
    error: str


class _Guarded:
    """Picklable wrapper: ``convert_fn(sample)`` or a :class:`SampleFailure`.

    One malformed sample (bad XML, unreadable image, size mismatch ...)
    must not stop the conversion of the others.
    """

    def __init__(self, convert_fn: Callable[[Sample], SampleResult]):
        self.convert_fn = convert_fn

    def __call__(self, sample: Sample):
        try:
            return self.convert_fn(sample)
        except Exception as err:  # reported per sample, never swallowed
            source = str(sample.image)
            if isinstance(sample.annotation, (str, os.PathLike)):
                source += f' + {os.fspath(sample.annotation)}'
            return SampleFailure(sample.name, source,
                                 f'{type(err).__name__}: {err}')


@dataclass
class ConversionSummary:
    """Outcome of a whole conversion.

    Attributes:
        dataset (str): Data set name.
        out_root (Path): Output root.
        results (list[SampleResult]): One per converted sample.
        splits (dict[str, list[str]]): Split files written.
        skipped (list[str]): Source images skipped (``skip_missing``).
        failures (list[SampleFailure]): Samples that failed (not written,
            not in any split file).
    """
    dataset: str
    out_root: Path
    results: List[SampleResult] = field(default_factory=list)
    splits: Dict[str, List[str]] = field(default_factory=dict)
    skipped: List[str] = field(default_factory=list)
    failures: List[SampleFailure] = field(default_factory=list)

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
        if self.failures:
            out.append(f'  FAILED {len(self.failures)} of '
                       f'{len(self.failures) + len(self.results)} samples '
                       '(not written, not in any split):')
            out += [f'  FAILED {f.name} ({f.source}): {f.error}'
                    for f in self.failures]
        return out


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

    A sample that fails is recorded and the others are still converted;
    the split files list the samples that succeeded, and then
    :class:`IncompleteConversionError` names every failure.

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

    Raises:
        IncompleteConversionError: If any sample failed (after writing the
            others and their split files); it carries the summary.
    """
    if not samples:
        raise SourceLayoutError(f'{dataset}: no samples found to convert')
    _check_unique_names(samples)
    out_root = Path(out_root)
    outcomes = map_samples(_Guarded(convert_fn), samples, nproc,
                           show_progress)
    summary = ConversionSummary(
        dataset=dataset,
        out_root=out_root,
        results=[r for r in outcomes if isinstance(r, SampleResult)],
        skipped=list(skipped or []),
        failures=[r for r in outcomes if isinstance(r, SampleFailure)])
    by_split: Dict[str, List[str]] = {}
    for r in summary.results:
        by_split.setdefault(r.split, []).append(r.name)
    for split, names in by_split.items():
        summary.splits[split] = write_split(out_root, split, names)
    if split_files:
        summary.splits.update(
            copy_split_files(out_root, split_files,
                             skip=[f.name for f in summary.failures]))
    if summary.failures:
        raise IncompleteConversionError(
            f'{dataset}: {len(summary.failures)} of {len(samples)} samples '
            f'failed (the other {len(summary.results)} were written and '
            'listed in splits/): ' + '; '.join(
                f'{f.name} ({f.source}): {f.error}'
                for f in summary.failures), summary)
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

    A conversion in which some samples failed prints the summary of what
    was written, then each failure on stderr, and returns 1.

    Returns:
        int: Exit status (0 = success, 1 = input error or failed samples).
    """
    try:
        summary = convert()
    except IncompleteConversionError as err:
        if err.summary is not None:
            print('\n'.join(err.summary.lines()))
            print(f'error: {len(err.summary.failures)} sample(s) failed:',
                  file=sys.stderr)
            for f in err.summary.failures:
                print(f'  {f.name} ({f.source}): {f.error}',
                      file=sys.stderr)
        else:
            print(f'error: {err}', file=sys.stderr)
        return 1
    except (OSError, ValueError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    print('\n'.join(summary.lines()))
    return 0
