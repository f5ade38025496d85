"""Write a seeded train/val/test split of a converted data set.

For data sets without an official split (e.g. TNBC, converted to
``splits/all.txt`` by ``tnbc.py``), the self-ensembling UDA paper's
80/10/10 split::

    python tools/dataset_converters/make_splits.py data/tnbc \
        --ratios 0.8 0.1 0.1 --seed 0

Names come from ``splits/<from>.txt`` (default ``all``) or, without it,
from ``images/*.png``. Existing ``train``/``val``/``test`` files are
replaced. The same names, ratios and seed always give the same split.
"""
import argparse
import os.path as osp
import sys

try:
    import nucseg  # noqa: F401
except ImportError:  # running from a source checkout without install
    sys.path.insert(
        0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from nucseg.datasets.converters.splits import (  # noqa: E402
    add_split_cli_args, converted_names, write_seeded_splits)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Seeded train/val/test split of a converted data set')
    parser.add_argument('root', help='converted data set (nucseg layout)')
    add_split_cli_args(parser, optional=False)
    parser.add_argument(
        '--from', dest='source', default='all',
        help='split file listing the names (default: all)')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        names = converted_names(args.root, args.source)
        splits = write_seeded_splits(args.root, names, args.ratios,
                                     args.seed)
    except (OSError, ValueError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    counts = ', '.join(f'{k} {len(v)}' for k, v in splits.items())
    print(f'{args.root}: {len(names)} names -> {counts} '
          f'(seed {args.seed})')
    return 0


if __name__ == '__main__':
    sys.exit(main())
