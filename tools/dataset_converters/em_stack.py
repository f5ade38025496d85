"""Convert an EM image stack + mask stack (or two slice folders) to nucseg.

Examples::

    # one multi-page TIFF of images and one of masks
    python tools/dataset_converters/em_stack.py images.tif masks.tif \
        data/my_em --split train
    # a folder of slices and a folder of masks (paired by name or number)
    python tools/dataset_converters/em_stack.py raw/ mitochondria/ \
        data/my_em --split train
    # unlabelled slices (no masks)
    python tools/dataset_converters/em_stack.py raw/ - data/my_em_raw

Masks: foreground = value > 127; instances = connected components.
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
    MASK_THRESHOLD, convert_em_folders, convert_tiff_stack)
from nucseg.datasets.converters.runner import run_cli  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Convert an EM stack (or slice folder) with masks to '
        'nucseg')
    parser.add_argument('images', help='image stack (.tif) or folder')
    parser.add_argument('masks', help="mask stack (.tif) or folder; '-' "
                        'for unlabelled slices (folders only)')
    parser.add_argument('out', help='output root (nucseg convention)')
    parser.add_argument('--split', default='all', help='split name')
    parser.add_argument('--prefix', default=None,
                        help='name prefix (default: stack stem; none for '
                        'folders)')
    parser.add_argument('--connectivity', type=int, choices=(4, 8),
                        default=4)
    parser.add_argument('--threshold', type=int, default=MASK_THRESHOLD,
                        help='mask foreground is value > threshold')
    parser.add_argument('--nproc', type=int, default=1)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    common = dict(split=args.split, connectivity=args.connectivity,
                  threshold=args.threshold, nproc=args.nproc,
                  show_progress=True)
    if osp.isdir(args.images):
        masks = None if args.masks == '-' else args.masks
        return run_cli(lambda: convert_em_folders(
            args.images, masks, args.out, prefix=args.prefix or '',
            **common))
    if args.masks == '-':
        print('error: unlabelled conversion needs an image folder',
              file=sys.stderr)
        return 1
    return run_cli(lambda: convert_tiff_stack(
        args.images, args.masks, args.out, prefix=args.prefix, **common))


if __name__ == '__main__':
    sys.exit(main())
