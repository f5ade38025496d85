"""Convert CPM-17 (train/test Images/*.png + Labels/*.mat) to nucseg.

Example::

    python tools/dataset_converters/cpm17.py cpm17 data/cpm17

Outputs are named <split>_<stem> (train and test reuse the same stems)
and listed in splits/train.txt and splits/test.txt.
"""
import argparse
import os.path as osp
import sys

try:
    import nucseg  # noqa: F401
except ImportError:  # running from a source checkout without install
    sys.path.insert(
        0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from nucseg.datasets.converters.cpm17 import convert_cpm17  # noqa: E402
from nucseg.datasets.converters.runner import (  # noqa: E402
    add_common_cli_args, run_cli)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Convert CPM-17 to the nucseg convention')
    add_common_cli_args(parser)
    parser.add_argument(
        '--splits',
        nargs='+',
        default=None,
        help='split folders to convert (default: train and test if '
        'present)')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    return run_cli(lambda: convert_cpm17(
        args.src,
        args.out,
        splits=args.splits,
        split_files=args.split_file,
        nproc=args.nproc,
        skip_missing=args.skip_missing,
        show_progress=True))


if __name__ == '__main__':
    sys.exit(main())
