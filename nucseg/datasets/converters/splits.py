"""Reproducible random train/val/test splits of a converted data set.

Papers that give only split ratios (e.g. the self-ensembling UDA method's
80/10/10 of TNBC, KIRC and TCIA-STAD) are reproduced with a seeded
permutation of the sorted names: the same names, ratios and seed always
give the same split files.
"""
import argparse
import os
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Union

import numpy as np

from nucseg.datasets.synthetic.writer import SPLIT_NAMES, split_counts
from .errors import IncompleteConversionError
from .layout import Sample, read_split_file, write_split
from .runner import ConversionSummary, SampleResult, run_conversion

PathLike = Union[str, os.PathLike]

__all__ = [
    'seeded_splits', 'write_seeded_splits', 'converted_names',
    'run_with_seeded_splits', 'add_split_cli_args', 'split_ratios_arg'
]


def seeded_splits(names: Sequence[str],
                  ratios: Sequence[float] = (0.8, 0.1, 0.1),
                  seed: int = 0) -> Dict[str, List[str]]:
    """Split ``names`` into ``train``/``val``/``test`` by ``ratios``.

    The sorted unique names are permuted with
    ``numpy.random.default_rng(seed)``; the counts come from
    :func:`~nucseg.datasets.synthetic.writer.split_counts`
    (largest-remainder rounding, every split with a positive ratio gets
    at least one name when there are enough), e.g. 50 -> 40/5/5 and
    97 -> 77/10/10 for 80/10/10.

    Args:
        names (Sequence[str]): Sample names.
        ratios (Sequence[float]): Train/val/test ratios summing to 1.
        seed (int): Seed of the permutation.

    Returns:
        dict[str, list[str]]: Sorted names of each split.

    Raises:
        ValueError: No names, or ratios that are not 3 non-negative numbers
            summing to 1.
    """
    names = sorted(set(names))
    if not names:
        raise ValueError('seeded_splits: no names to split')
    counts = split_counts(len(names), ratios)
    order = np.random.default_rng(int(seed)).permutation(len(names))
    out, start = {}, 0
    for split, count in zip(SPLIT_NAMES, counts):
        out[split] = sorted(names[i] for i in order[start:start + count])
        start += count
    return out


def write_seeded_splits(out_root: PathLike,
                        names: Sequence[str],
                        ratios: Sequence[float] = (0.8, 0.1, 0.1),
                        seed: int = 0) -> Dict[str, List[str]]:
    """Write ``splits/{train,val,test}.txt`` from :func:`seeded_splits`.

    Returns:
        dict[str, list[str]]: The names written per split.
    """
    return {
        split: write_split(out_root, split, split_names)
        for split, split_names in seeded_splits(names, ratios, seed).items()
    }


def converted_names(root: PathLike, split: str = 'all') -> List[str]:
    """Names of a converted data set: ``splits/<split>.txt`` if present,
    else every ``images/*.png``.

    Raises:
        FileNotFoundError: Neither exists (naming the folder).
    """
    root = Path(root)
    split_file = root / 'splits' / f'{split}.txt'
    if split_file.is_file():
        return read_split_file(split_file)
    images = root / 'images'
    if not images.is_dir():
        raise FileNotFoundError(
            f'{root} is not a converted data set: no {split_file} and no '
            f'{images}/')
    names = sorted(p.stem for p in images.glob('*.png'))
    if not names:
        raise FileNotFoundError(f'no images/*.png in {root}')
    return names


def run_with_seeded_splits(dataset: str,
                           samples: Sequence[Sample],
                           convert_fn: Callable[[Sample], SampleResult],
                           out_root: PathLike,
                           ratios: Optional[Sequence[float]] = (0.8, 0.1,
                                                                0.1),
                           seed: int = 0,
                           split_files: Optional[Sequence[PathLike]] = None,
                           nproc: int = 1,
                           show_progress: bool = False,
                           skipped: Optional[List[str]] = None
                           ) -> ConversionSummary:
    """:func:`~.runner.run_conversion`, then seeded splits of the samples
    that were converted.

    When some samples fail, the others are still written and split (the
    seeded ``train``/``val``/``test`` files list only converted samples)
    before the :class:`IncompleteConversionError` is re-raised.

    Args:
        dataset, samples, convert_fn, out_root, split_files, nproc,
        show_progress, skipped: As for :func:`~.runner.run_conversion`.
        ratios (Sequence[float], optional): Train/val/test ratios (None:
            no seeded splits).
        seed (int): Seed of :func:`seeded_splits`.

    Returns:
        ConversionSummary: ``splits`` includes the seeded ones.
    """
    error = None
    try:
        summary = run_conversion(
            dataset, samples, convert_fn, out_root, split_files=split_files,
            nproc=nproc, show_progress=show_progress, skipped=skipped)
    except IncompleteConversionError as err:
        if err.summary is None:
            raise
        error, summary = err, err.summary
    if ratios is not None and summary.results:
        summary.splits.update(
            write_seeded_splits(out_root, [r.name for r in summary.results],
                                ratios, seed))
    if error is not None:
        raise error
    return summary


def add_split_cli_args(parser: argparse.ArgumentParser,
                       optional: bool = True) -> None:
    """Add ``--ratios``, ``--seed`` (and ``--no-split``) to a command line.

    Args:
        parser (argparse.ArgumentParser): The parser.
        optional (bool): Also add ``--no-split`` (converters that may
            write ``splits/all.txt`` only).
    """
    parser.add_argument(
        '--ratios', type=float, nargs=3, default=(0.8, 0.1, 0.1),
        metavar=('TRAIN', 'VAL', 'TEST'),
        help='ratios of the seeded train/val/test split')
    parser.add_argument('--seed', type=int, default=0, help='split seed')
    if optional:
        parser.add_argument(
            '--no-split', action='store_true',
            help='write splits/all.txt only (no seeded split)')


def split_ratios_arg(args: argparse.Namespace):
    """The ``ratios`` to pass on: None with ``--no-split``."""
    return None if getattr(args, 'no_split', False) else tuple(args.ratios)
