"""Convert Lucchi++ or Kasthuri++ (Casser et al. 2020) to nucseg.

Example::

    python tools/dataset_converters/lucchi_kasthuri_pp.py \
        data/raw/Kasthuri++ data/kasthuripp --name Kasthuri++

``SRC`` holds ``Train_In/``, ``Train_Out/``, ``Test_In/``, ``Test_Out/``
(PNG slices; it may also be their parent folder). Slices become
``train_<stem>`` / ``test_<stem>`` in splits ``train`` / ``test``.
Masks: foreground = value > 127 (Kasthuri++'s (2, 2, 2) "outside the
volume" value is background); instances = connected components.
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
    MASK_THRESHOLD, convert_casser_pp)
from nucseg.datasets.converters.runner import run_cli  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Convert Lucchi++ / Kasthuri++ to nucseg')
    parser.add_argument('src', help='folder with Train_In/ ... Test_Out/')
    parser.add_argument('out', help='output root (nucseg convention)')
    parser.add_argument('--name', default='Lucchi++/Kasthuri++',
                        help='data set name for the summary')
    parser.add_argument('--connectivity', type=int, choices=(4, 8),
                        default=4)
    parser.add_argument('--threshold', type=int, default=MASK_THRESHOLD,
                        help='mask foreground is value > threshold')
    parser.add_argument('--nproc', type=int, default=1)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    return run_cli(lambda: convert_casser_pp(
        args.src, args.out, dataset=args.name,
        connectivity=args.connectivity, threshold=args.threshold,
        nproc=args.nproc, show_progress=True))


if __name__ == '__main__':
    sys.exit(main())
