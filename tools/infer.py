"""Predict instance label maps for an image or a folder of images.

Works with every nucseg model config::

    python tools/infer.py configs/sprout/sprout_weightfree.py image.tif \
        --out preds
    python tools/infer.py CONFIG images/ --out preds --checkpoint x.pth \
        --overlay

Writes ``OUT/<image stem>.png`` (uint16 instance labels, 0 = background)
and, with ``--overlay``, ``OUT/<image stem>_overlay.png`` (contours on the
image). Unreadable images are reported by name; the others are still
written and the exit status is 1.
"""
import argparse
import os.path as osp
import sys
import time
from pathlib import Path

from mmengine.config import DictAction

try:
    import nucseg  # noqa: F401
except ImportError:  # running from a source checkout without install
    sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from nucseg.apis import (build_test_pipeline, inference_model,  # noqa: E402
                         init_model, list_images)
from nucseg.utils.io import (ImageReadError, read_image,  # noqa: E402
                             write_image, write_label)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Instance segmentation of images with a nucseg config')
    parser.add_argument('config', help='model config file')
    parser.add_argument('input', help='image file or folder of images')
    parser.add_argument('--out', required=True, help='output folder')
    parser.add_argument(
        '--checkpoint', help='trained weights (omit for training-free '
        'models)')
    parser.add_argument(
        '--device', help='cpu, cuda, cuda:1 ... (default: cuda if present)')
    parser.add_argument(
        '--overlay', action='store_true',
        help='also write <stem>_overlay.png with instance contours')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override settings of the config, key=value pairs')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    images = list_images(args.input)
    model = init_model(args.config, args.checkpoint, args.device,
                       args.cfg_options)
    pipeline = build_test_pipeline(model.cfg)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    failed = []
    for i, path in enumerate(images, 1):
        t0 = time.time()
        try:
            inst = inference_model(model, path, pipeline)
        except (ImageReadError, FileNotFoundError) as err:
            print(f'[{i}/{len(images)}] skipped: {err}', file=sys.stderr)
            failed.append(path)
            continue
        write_label(out / f'{path.stem}.png', inst)
        if args.overlay:
            from nucseg.visualization.overlay import draw_instances
            write_image(out / f'{path.stem}_overlay.png',
                        draw_instances(read_image(path), inst))
        print(f'[{i}/{len(images)}] {path.name}: {int(inst.max())} '
              f'instances, {time.time() - t0:.1f} s', flush=True)
    if failed:
        print(f'{len(failed)} of {len(images)} images failed: '
              + ', '.join(str(p) for p in failed), file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
