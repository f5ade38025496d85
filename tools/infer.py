"""Predict instance label maps for an image or a folder of images.

Works with every nucseg model config::

    python tools/infer.py configs/sprout/sprout_weightfree.py image.tif \
        --out preds
    python tools/infer.py CONFIG images/ --out preds --checkpoint x.pth \
        --overlay --recursive

Writes ``OUT/<image stem>.png`` (uint16 instance labels, 0 = background)
and, with ``--overlay``, ``OUT/<image stem>_overlay.png`` (contours on the
image); with ``--recursive`` the sub-folders are searched and mirrored in
``OUT``. Images whose names would collide (``x.png`` and ``x.tif``) get
their suffix in the output name (``x_png.png``, ``x_tif.png``) and the
renaming is printed. Nothing is ever written over an input: such a run is
refused before the model is loaded (exit status 2).

A file that fails (unreadable, too large, or the model fails on it) is
reported by name and the others are still written; the exit status is
then 1. Models that must be trained need ``--checkpoint`` (loaded only if
trusted, and strictly unless ``--non-strict``).
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
from nucseg.apis import (build_test_pipeline, count_instances,  # noqa: E402
                         inference_model, init_model, list_images,
                         output_names)
from nucseg.utils.checkpoint import CheckpointError  # noqa: E402
from nucseg.utils.config_check import UnknownKeyError  # noqa: E402
from nucseg.utils.io import read_image, write_image, write_label  # noqa

OVERLAY_SUFFIX = '_overlay'


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
        '--recursive', action='store_true',
        help='also process images in sub-folders (mirrored in --out)')
    parser.add_argument(
        '--non-strict', action='store_true',
        help='load a checkpoint whose keys do not match the model exactly '
        '(missing/unexpected keys and wrong shapes are skipped with a '
        'warning)')
    parser.add_argument(
        '--allow-random-weights', action='store_true',
        help='run a model that must be trained without --checkpoint '
        '(debugging only: predictions are meaningless)')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override settings of the config, key=value pairs')
    return parser.parse_args(argv)


def plan_outputs(images, root, out: Path, overlay: bool,
                 recursive: bool = False) -> dict:
    """``{image: (label path, overlay path or None)}``; print renames.

    Raises:
        FileExistsError: If an output would overwrite an input image, or
            ``out`` is the input folder (or inside it, with
            ``recursive``): outputs there would become inputs of the next
            run.
    """
    if root is not None:
        inside = out.resolve() == root.resolve() or (
            recursive and root.resolve() in out.resolve().parents)
        if inside:
            where = 'inside the input folder' if out.resolve(
            ) != root.resolve() else 'the input folder'
            raise FileExistsError(
                f'--out {out} is {where}: label maps would be written among '
                '(or over) the input images; choose another output folder')
    suffixes = (OVERLAY_SUFFIX, ) if overlay else ()
    names = output_names(images, root, suffixes)
    plan = {}
    for path, name in names.items():
        plan[path] = (out / f'{name}.png',
                      out / f'{name}{OVERLAY_SUFFIX}.png' if overlay else None)
        if Path(name).name != path.stem:
            print(f'note: {path.name} -> {name}.png (another input has the '
                  'same name)')
    inputs = {p.resolve() for p in images}
    clashes = sorted(
        str(p) for outs in plan.values() for p in outs
        if p is not None and p.resolve() in inputs)
    if clashes:
        raise FileExistsError(
            f'--out {out} would overwrite {len(clashes)} input image(s), '
            f'e.g. {", ".join(clashes[:3])}; choose another output folder')
    return plan


def main(argv=None) -> int:
    args = parse_args(argv)
    source = Path(args.input)
    try:
        images = list_images(source, args.recursive)
    except FileNotFoundError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    root = source if source.is_dir() else None
    if root is not None and not args.recursive:
        subdirs = sorted(p.name for p in root.iterdir() if p.is_dir())
        if subdirs:
            print(f'note: {len(subdirs)} sub-folder(s) of {root} not '
                  f'searched (use --recursive): {", ".join(subdirs[:5])}'
                  + (' ...' if len(subdirs) > 5 else ''))
    out = Path(args.out)
    try:
        plan = plan_outputs(images, root, out, args.overlay,
                            args.recursive)
    except FileExistsError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2

    print(f'loading model of {args.config}' +
          (f' with weights {args.checkpoint}' if args.checkpoint else
           ' (no checkpoint)') + ' ...', flush=True)
    t0 = time.time()
    try:
        model = init_model(args.config, args.checkpoint, args.device,
                           args.cfg_options, strict=not args.non_strict,
                           allow_random_weights=args.allow_random_weights)
    except (CheckpointError, UnknownKeyError, FileNotFoundError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    device = next(model.parameters(), None)
    device = device.device if device is not None else args.device or 'cpu'
    print(f'model {type(model).__name__} ready on {device} in '
          f'{time.time() - t0:.1f} s; {len(images)} image(s) to process',
          flush=True)
    pipeline = build_test_pipeline(model.cfg)
    out.mkdir(parents=True, exist_ok=True)
    failed = []
    for i, path in enumerate(images, 1):
        t0 = time.time()
        label_path, overlay_path = plan[path]
        try:
            inst = inference_model(model, path, pipeline)
            write_label(label_path, inst)
            if overlay_path is not None:
                from nucseg.visualization.overlay import draw_instances
                write_image(overlay_path,
                            draw_instances(read_image(path), inst))
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as err:  # one bad file must not stop the folder
            reason = str(err).splitlines()[0] if str(err) else ''
            if str(path) not in reason:
                reason = f'{path}: {type(err).__name__}: {reason}'
            print(f'[{i}/{len(images)}] skipped {path.name}: {reason}',
                  file=sys.stderr, flush=True)
            failed.append(path)
            continue
        print(f'[{i}/{len(images)}] {path.name}: {count_instances(inst)} '
              f'instances, {time.time() - t0:.1f} s', flush=True)
    print(f'wrote {len(images) - len(failed)} label map(s) to {out}')
    if failed:
        print(f'{len(failed)} of {len(images)} images failed: '
              + ', '.join(str(p) for p in failed), file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
