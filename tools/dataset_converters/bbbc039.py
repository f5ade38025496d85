"""Convert BBBC039 (images/*.tif, masks/*.png, metadata/*.txt) to nucseg.

Example::

    python tools/dataset_converters/bbbc039.py BBBC039 data/bbbc039

Splits come from metadata/training.txt, validation.txt and test.txt
(written as train, val and test).
"""
import argparse
import os.path as osp
import sys

try:
    import nucseg  # noqa: F401
except ImportError:  # running from a source checkout without install
    sys.path.insert(
        0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from nucseg.datasets.converters.bbbc039 import convert_bbbc039  # noqa: E402
from nucseg.datasets.converters.runner import (  # noqa: E402
    add_common_cli_args, run_cli)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Convert BBBC039 to the nucseg convention')
    add_common_cli_args(parser)
    parser.add_argument(
        '--connectivity',
        type=int,
        choices=(4, 8),
        default=8,
        help='pixel connectivity of the per-colour components')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    return run_cli(lambda: convert_bbbc039(
        args.src,
        args.out,
        split_files=args.split_file,
        nproc=args.nproc,
        skip_missing=args.skip_missing,
        connectivity=args.connectivity,
        show_progress=True))


if __name__ == '__main__':
    sys.exit(main())
