"""Convert MoNuSeg / Kumar (ImageScope XML) to the nucseg convention.

Examples::

    # training data: Tissue_Images/*.tif + Annotations/*.xml -> train split
    python tools/dataset_converters/monuseg.py \
        "MoNuSeg 2018 Training Data" data/monuseg --nproc 2
    # test data: <case>.tif + <case>.xml side by side -> test split
    python tools/dataset_converters/monuseg.py MoNuSegTestData data/monuseg

Every XML Region becomes one instance; overlapping polygons are painted
largest first so small nuclei stay visible, and any region that cannot be
kept is reported (see nucseg.datasets.converters.monuseg).
"""
import argparse
import os.path as osp
import sys

try:
    import nucseg  # noqa: F401
except ImportError:  # running from a source checkout without install
    sys.path.insert(
        0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from nucseg.datasets.converters.monuseg import convert_monuseg  # noqa: E402
from nucseg.datasets.converters.runner import (  # noqa: E402
    add_common_cli_args, run_cli)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Convert MoNuSeg / Kumar to the nucseg convention')
    add_common_cli_args(parser)
    parser.add_argument(
        '--split',
        default=None,
        help='split name for all images (default: train for the '
        'Tissue_Images/ + Annotations/ layout, test for the flat layout)')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    return run_cli(lambda: convert_monuseg(
        args.src,
        args.out,
        split=args.split,
        split_files=args.split_file,
        nproc=args.nproc,
        skip_missing=args.skip_missing,
        show_progress=True))


if __name__ == '__main__':
    sys.exit(main())
