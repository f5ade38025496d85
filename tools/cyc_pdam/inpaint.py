"""CyC-PDAM step 2: remove synthesised nuclei that have no annotation.

Example::

    python tools/cyc_pdam/inpaint.py data/bbbc039_to_kumar \
        data/bbbc039_to_kumar_inp

Reads SRC (nucseg convention: images/, labels/, splits/; e.g. the output
of tools/cyc_pdam/translate.py), applies Eq. 1-2 of the paper (Otsu on the
haematoxylin channel, minus the dilated annotated nuclei, cv2.inpaint
TELEA radius 3) and writes OUT with the same names, labels and splits.
Images that fail are named; the others are written; exit status 1.
"""
import argparse
import os.path as osp
import sys

try:
    import nucseg  # noqa: F401
except ImportError:  # running from a source checkout without install
    sys.path.insert(
        0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from nucseg.datasets.converters.derive import derive_dataset  # noqa: E402
from nucseg.datasets.converters.runner import run_cli  # noqa: E402
from nucseg.datasets.transforms.inpainting import \
    inpaint_unannotated_nuclei  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Nuclei inpainting of synthesised H&E images')
    parser.add_argument('src', help='synthesised data set (nucseg layout)')
    parser.add_argument('out', help='output root')
    parser.add_argument('--radius', type=float, default=3.0,
                        help='cv2.inpaint radius (paper: 3)')
    parser.add_argument('--label-dilation', type=int, default=2,
                        help='pixels by which annotated nuclei are grown '
                        'before the subtraction (0 = the paper)')
    parser.add_argument('--min-size', type=int, default=0,
                        help='ignore auxiliary blobs smaller than this')
    parser.add_argument('--splits', nargs='+', default=None,
                        help='only these splits (default: all images)')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)

    def step(image, label, path):
        out, aux = inpaint_unannotated_nuclei(
            image, label, args.radius, args.label_dilation, args.min_size,
            name=path)
        return out, dict(inpainted_fraction=float(aux.mean()))

    def convert():
        summary = derive_dataset(args.src, args.out, step, 'inpainting',
                                 splits=args.splits, require_labels=True,
                                 show_progress=True)
        fractions = [r.report['inpainted_fraction'] for r in summary.results]
        if fractions:
            mean = 100 * sum(fractions) / len(fractions)
            print(f'inpainted on average {mean:.2f}% of the pixels')
        return summary

    return run_cli(convert)


if __name__ == '__main__':
    sys.exit(main())
