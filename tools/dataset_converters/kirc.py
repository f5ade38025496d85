"""Convert KIRC (Irshad et al. 2014) to the nucseg convention.

Example::

    python tools/dataset_converters/kirc.py KIRC data/kirc \
        --ratios 0.8 0.1 0.1 --seed 0

Source layout (as the CellSegUDA authors distribute it):
``<split>_images/<id>_image.tiff`` + ``<split>_masks/<id>_mask.png``
(binary masks; instances are their connected components). Writes
``splits/all.txt`` and a seeded 80/10/10 ``train``/``val``/``test`` split.
"""
import argparse
import os.path as osp
import sys

try:
    import nucseg  # noqa: F401
except ImportError:  # running from a source checkout without install
    sys.path.insert(
        0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from nucseg.datasets.converters.kirc import convert_kirc  # noqa: E402
from nucseg.datasets.converters.runner import (  # noqa: E402
    add_common_cli_args, run_cli)
from nucseg.datasets.converters.splits import (  # noqa: E402
    add_split_cli_args, split_ratios_arg)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Convert KIRC to the nucseg convention')
    add_common_cli_args(parser)
    add_split_cli_args(parser)
    parser.add_argument(
        '--connectivity', type=int, choices=(4, 8), default=4,
        help='pixel connectivity of the connected components')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    return run_cli(lambda: convert_kirc(
        args.src,
        args.out,
        ratios=split_ratios_arg(args),
        seed=args.seed,
        split_files=args.split_file,
        nproc=args.nproc,
        skip_missing=args.skip_missing,
        connectivity=args.connectivity,
        show_progress=True))


if __name__ == '__main__':
    sys.exit(main())
