"""Convert CryoNuSeg (Mahbod et al. 2021) to the nucseg convention.

Example::

    python tools/dataset_converters/cryonuseg.py cryonuseg data/cryonuseg \
        --annotation ann1 --mask-folder "label masks modify"

The instance labels are read from
``<annotator folder>/<mask folder>/<image stem>.tif``; --label-dir gives
the folder explicitly instead.
"""
import argparse
import os.path as osp
import sys

try:
    import nucseg  # noqa: F401
except ImportError:  # running from a source checkout without install
    sys.path.insert(
        0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from nucseg.datasets.converters.cryonuseg import (  # noqa: E402
    ANNOTATORS, convert_cryonuseg)
from nucseg.datasets.converters.runner import (  # noqa: E402
    add_common_cli_args, run_cli)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Convert CryoNuSeg to the nucseg convention')
    add_common_cli_args(parser)
    parser.add_argument(
        '--split', default='all', help='split name for all images')
    parser.add_argument(
        '--annotation',
        choices=sorted(ANNOTATORS),
        default='ann1',
        help='annotator: ' + ', '.join(f'{k} = "{v}"'
                                       for k, v in ANNOTATORS.items()))
    parser.add_argument(
        '--mask-folder',
        default='label masks modify',
        help='instance-label folder inside the annotator folder')
    parser.add_argument(
        '--label-dir',
        default=None,
        help='explicit instance-label folder (absolute or relative to '
        'SRC); overrides --annotation and --mask-folder')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    return run_cli(lambda: convert_cryonuseg(
        args.src,
        args.out,
        split=args.split,
        annotation=args.annotation,
        mask_folder=args.mask_folder,
        label_dir=args.label_dir,
        split_files=args.split_file,
        nproc=args.nproc,
        skip_missing=args.skip_missing,
        show_progress=True))


if __name__ == '__main__':
    sys.exit(main())
