"""Convert the 2018 Data Science Bowl (BBBC038) to the nucseg convention.

Examples::

    # stage1_train: <id>/images/<id>.png + <id>/masks/*.png
    python tools/dataset_converters/dsb2018.py stage1_train data/dsb2018
    # stage1_test with the released RLE solution
    python tools/dataset_converters/dsb2018.py stage1_test data/dsb2018 \
        --rle-csv stage1_solution.csv --split test

RLE: 1-indexed start/length pairs, pixels numbered top to bottom then
left to right.
"""
import argparse
import os.path as osp
import sys

try:
    import nucseg  # noqa: F401
except ImportError:  # running from a source checkout without install
    sys.path.insert(
        0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from nucseg.datasets.converters.dsb2018 import convert_dsb2018  # noqa: E402
from nucseg.datasets.converters.runner import (  # noqa: E402
    add_common_cli_args, run_cli)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Convert DSB 2018 to the nucseg convention')
    add_common_cli_args(parser)
    parser.add_argument(
        '--split', default='train', help='split name for all images')
    parser.add_argument(
        '--rle-csv',
        default=None,
        help='RLE table (stage1_train_labels.csv / stage1_solution.csv) '
        'to read the labels from instead of <id>/masks/')
    parser.add_argument(
        '--usage',
        nargs='+',
        default=None,
        help='keep only RLE rows with these Usage values '
        '(e.g. Public Private)')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    return run_cli(lambda: convert_dsb2018(
        args.src,
        args.out,
        split=args.split,
        rle_csv=args.rle_csv,
        usage=args.usage,
        split_files=args.split_file,
        nproc=args.nproc,
        skip_missing=args.skip_missing,
        show_progress=True))


if __name__ == '__main__':
    sys.exit(main())
