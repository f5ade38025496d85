"""CyC-PDAM step 1b: translate an annotated data set with a trained CycleGAN.

Example (fluorescence -> H&E, labels carried over)::

    python tools/cyc_pdam/translate.py \
        configs/cyc_pdam/cyclegan_resnet-9b_1xb1-40k_bbbc039-to-kumar-256.py \
        work_dirs/cyclegan_bbbc039_kumar/iter_40000.pth \
        data/bbbc039 data/bbbc039_to_kumar

SRC and OUT use the nucseg convention (images/, labels/, splits/). Every
image goes through the config's ``translate_pipeline`` (applied to the
loaded RGB image: e.g. the fluorescence inversion used in training), is
translated at full size (padded internally to a multiple of 4) by the
``a2b`` generator (``--direction b2a`` for the other one) and written
under the same name; label maps and split files are copied. Images that
fail are named; the others are written; exit status 1.
"""
import argparse
import os.path as osp
import sys

import torch
from mmengine.config import DictAction
from mmengine.dataset import Compose

try:
    import nucseg  # noqa: F401
except ImportError:  # running from a source checkout without install
    sys.path.insert(
        0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from nucseg.apis import init_model  # noqa: E402
from nucseg.datasets.converters.derive import derive_dataset  # noqa: E402
from nucseg.datasets.converters.runner import run_cli  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Translate a data set with a trained CycleGAN')
    parser.add_argument('config', help='CycleGAN config')
    parser.add_argument('checkpoint', help='CycleGAN checkpoint')
    parser.add_argument('src', help='source data set (nucseg layout)')
    parser.add_argument('out', help='output root')
    parser.add_argument('--direction', choices=['a2b', 'b2a'],
                        default='a2b', help='generator to use')
    parser.add_argument('--splits', nargs='+', default=None,
                        help='only these splits (default: all images)')
    parser.add_argument('--device', default=None,
                        help='cpu or cuda (default: cuda if available)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)

    def convert():
        model = init_model(args.config, args.checkpoint, args.device,
                           args.cfg_options)
        pipeline = model.cfg.get('translate_pipeline', None)
        if pipeline is None or not hasattr(model, 'translate'):
            raise ValueError(
                f'{args.config}: not an image-translation config (needs a '
                'model with translate() and a `translate_pipeline`)')
        compose = Compose(pipeline)
        pre = model.data_preprocessor

        def step(image, label, path):
            results = compose(
                dict(img=image, img_path=path, img_shape=image.shape[:2],
                     ori_shape=image.shape[:2]))
            with torch.no_grad():
                fake = model.translate(pre.to_model([results['inputs']]),
                                       args.direction)
            return pre.to_uint8(fake)[0], {}

        return derive_dataset(args.src, args.out, step,
                              f'CycleGAN {args.direction}',
                              splits=args.splits, show_progress=True)

    return run_cli(convert)


if __name__ == '__main__':
    sys.exit(main())
