"""Convert the EPFL (Lucchi) FIB-SEM mitochondria stacks to nucseg.

Example::

    python tools/dataset_converters/epfl_lucchi.py data/raw/epfl \
        data/epfl --random-test 100 --seed 0

``SRC`` holds ``training.tif`` + ``training_groundtruth.tif`` and/or
``testing.tif`` + ``testing_groundtruth.tif`` (multi-page TIFFs). Slices go
to splits ``train`` / ``test``; ``--random-test N`` also writes SAMDA's
protocol split of the training slices (``random_test`` with N slices,
``random_train`` with the rest). Masks: foreground = value > 127;
instances = connected components.
"""
import argparse
import os.path as osp
import sys

try:
    import nucseg  # noqa: F401
except ImportError:  # running from a source checkout without install
    sys.path.insert(
        0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from nucseg.datasets.converters.em_mito import (  # noqa: E402
    MASK_THRESHOLD, convert_epfl_lucchi)
from nucseg.datasets.converters.runner import run_cli  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Convert the EPFL/Lucchi TIFF stacks to nucseg')
    parser.add_argument('src', help='folder with the EPFL .tif stacks')
    parser.add_argument('out', help='output root (nucseg convention)')
    parser.add_argument(
        '--random-test', type=int, default=None, metavar='N',
        help='also write splits random_test (N training slices) and '
        'random_train (the rest), as in SAMDA Sec. 4')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of --random-test')
    parser.add_argument('--connectivity', type=int, choices=(4, 8),
                        default=4)
    parser.add_argument('--threshold', type=int, default=MASK_THRESHOLD,
                        help='mask foreground is value > threshold')
    parser.add_argument('--nproc', type=int, default=1)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    return run_cli(lambda: convert_epfl_lucchi(
        args.src, args.out, connectivity=args.connectivity,
        threshold=args.threshold, random_test=args.random_test,
        seed=args.seed, nproc=args.nproc, show_progress=True))


if __name__ == '__main__':
    sys.exit(main())
