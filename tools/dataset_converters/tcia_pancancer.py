"""Convert the TCIA Pan-Cancer-Nuclei-Seg manual patches to nucseg.

Example (the 97 STAD patches of the self-ensembling UDA paper)::

    python tools/dataset_converters/tcia_pancancer.py \
        manual_segmentation_data data/tcia_stad --cancer-types stad \
        --table Pan-Cancer-Nuclei-Seg_1365patches_to_TCGA-ID_readme.txt

Source layout: ``**/<id>_crop.png`` + ``**/<id>_labeled_mask_corrected.png``;
the cancer type comes from the TCIA crosswalk table (``--table``, or a
``*.csv``/``*.txt`` with a ``CancerType`` header found in SRC) or from a
parent folder named after the type. Writes ``splits/all.txt`` and a seeded
80/10/10 ``train``/``val``/``test`` split.
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
from nucseg.datasets.converters.splits import (  # noqa: E402
    add_split_cli_args, split_ratios_arg)
from nucseg.datasets.converters.tcia_pancancer import (  # noqa: E402
    TCIA_CANCER_TYPES, convert_tcia_pancancer)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Convert TCIA Pan-Cancer-Nuclei-Seg manual patches to '
        'the nucseg convention')
    add_common_cli_args(parser)
    parser.add_argument(
        '--cancer-types', nargs='+', default=None,
        choices=TCIA_CANCER_TYPES, metavar='TYPE',
        help='keep these cancer types only (e.g. stad); default: all')
    parser.add_argument(
        '--table', default=None,
        help='crosswalk table with a CancerType column (default: found '
        'in SRC)')
    add_split_cli_args(parser)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    return run_cli(lambda: convert_tcia_pancancer(
        args.src,
        args.out,
        cancer_types=args.cancer_types,
        table=args.table,
        ratios=split_ratios_arg(args),
        seed=args.seed,
        split_files=args.split_file,
        nproc=args.nproc,
        skip_missing=args.skip_missing,
        show_progress=True))


if __name__ == '__main__':
    sys.exit(main())
