"""Convert TNBC (Naylor et al. 2018) to the nucseg convention.

Example::

    python tools/dataset_converters/tnbc.py TNBC_NucleiSegmentation \
        data/tnbc --split all

Instances are the connected components of the binary GT_XX masks
(4-connectivity unless --connectivity 8).
"""
import argparse
import os.path as osp
import sys

try:
    import nucseg  # noqa: F401
except ImportError:  # running from a source checkout without install
    sys.path.insert(
        0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from nucseg.datasets.converters.runner import (  # noqa: E402
    add_common_cli_args, run_cli)
from nucseg.datasets.converters.tnbc import convert_tnbc  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Convert TNBC to the nucseg convention')
    add_common_cli_args(parser)
    parser.add_argument(
        '--split', default='all', help='split name for all images')
    parser.add_argument(
        '--connectivity',
        type=int,
        choices=(4, 8),
        default=4,
        help='pixel connectivity of the connected components')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    return run_cli(lambda: convert_tnbc(
        args.src,
        args.out,
        split=args.split,
        split_files=args.split_file,
        nproc=args.nproc,
        skip_missing=args.skip_missing,
        connectivity=args.connectivity,
        show_progress=True))


if __name__ == '__main__':
    sys.exit(main())
