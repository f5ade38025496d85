"""Convert a COCO instance data set (images + JSON) to nucseg.

Example (the CyC-PDAM sample: synthesised H&E source images)::

    python tools/dataset_converters/coco_instances.py \
        ../shared/data/pdam_fluo2tcga/source_images data/fluo2tcga_syn \
        --ann-file ../shared/data/pdam_fluo2tcga/annotations/\
fluo2tcga_instance_annotations.json

Polygon and RLE segmentations are decoded with pycocotools; outputs are
named after the image file stems and listed in splits/<split>.txt. An
image that fails (missing file, polygon with < 3 points, size mismatch)
is reported by name; the others are converted and the exit status is 1.
"""
import argparse
import os.path as osp
import sys

try:
    import nucseg  # noqa: F401
except ImportError:  # running from a source checkout without install
    sys.path.insert(
        0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from nucseg.datasets.converters.coco_instances import \
    convert_coco_instances  # noqa: E402
from nucseg.datasets.converters.runner import run_cli  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Convert COCO instance annotations to nucseg')
    parser.add_argument('src', help='image folder (file_name is relative '
                        'to it)')
    parser.add_argument('out', help='output root (nucseg convention)')
    parser.add_argument('--ann-file', required=True,
                        help='COCO instance JSON file')
    parser.add_argument('--split', default='train',
                        help='split name of the converted images')
    parser.add_argument('--categories', nargs='+', default=None,
                        help='category names to keep (default: all)')
    parser.add_argument(
        '--split-file', nargs='+', default=None, metavar='FILE',
        help='extra split lists (one name a line), written as '
        'splits/<file stem>.txt')
    parser.add_argument('--nproc', type=int, default=1,
                        help='number of processes')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    return run_cli(lambda: convert_coco_instances(
        args.src, args.ann_file, args.out, split=args.split,
        categories=args.categories, split_files=args.split_file,
        nproc=args.nproc, show_progress=True))


if __name__ == '__main__':
    sys.exit(main())
