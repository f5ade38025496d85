"""Segment the nuclei of images and whole slides with any nucseg config.

Images and slides of any size are segmented at the config's pixel size
(``infer_cfg.mpp``; the input's from ``--mpp`` or its metadata), tile by
tile with instance stitching (``nucseg.apis.tiled_inference``)::

    python tools/infer.py configs/sprout/sprout_weightfree.py image.tif \
        --out preds
    python tools/infer.py configs/sprout/sprout_weightfree_slide.py \
        slides/ --out preds --format geojson csv labels overlay --resume
    python tools/infer.py CONFIG images/ --out preds --checkpoint x.pth \
        --overlay --recursive
    bash tools/dist_infer.sh CONFIG slides/ 4 --out preds   # 4 processes

Outputs per input ``<name>`` (``--format``, default ``labels``):

* ``labels``: ``OUT/<name>.png`` (uint16, 0 = background) when it has
  fewer than 65,536 instances, else ``OUT/<name>.tif`` (int32 TIFF); at the
  input's full resolution; the log says which;
* ``geojson``: ``OUT/<name>.geojson``, one QuPath Polygon feature per
  nucleus in level-0 pixel coordinates (``--object-type``,
  ``--classification``, measurements);
* ``csv``: ``OUT/<name>.csv``, one row per nucleus (centroid, area,
  perimeter, shape, mean haematoxylin, score if the model has one);
* ``overlay``: ``OUT/<name>_overlay.png``, contours on the image
  (downsampled to ``--overlay-max-side``). ``--overlay`` adds it.

On slides, tiles without tissue are skipped (``--tissue``) and the
processed fraction is printed; a progress bar shows tiles/s and the ETA.
``--resume`` skips inputs whose outputs all exist (outputs are written
under temporary names and renamed when complete). With ``--recursive``
sub-folders are searched and mirrored in ``OUT``; inputs whose names would
collide (``x.png`` and ``x.tif``) get their suffix in the output name
(``x_png``, ``x_tif``; printed). Nothing is ever written over an input:
such a run is refused before the model is loaded (exit status 2).

An input that fails (unreadable, no tissue, unknown and implausible pixel
size, or the model fails on it) is reported by name and the others are
still written; the exit status is then 1. Models that must be trained
need ``--checkpoint`` (loaded only if trusted, and strictly unless
``--non-strict``). ``--launcher pytorch`` (``tools/dist_infer.sh``) shares
the inputs among the processes.
"""
import argparse
import os
import os.path as osp
import sys
import time
import warnings
from pathlib import Path

from mmengine.config import DictAction

try:
    import nucseg  # noqa: F401
except ImportError:  # running from a source checkout without install
    sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from nucseg.apis import init_model, list_images, output_names  # noqa: E402
from nucseg.apis.exports import (FORMATS, LabelMapWriter,  # noqa: E402
                                 NucleiExporter, OverlayWriter)
from nucseg.apis.tiled_inference import TiledInferencer  # noqa: E402
from nucseg.utils.checkpoint import CheckpointError  # noqa: E402
from nucseg.utils.config_check import UnknownKeyError  # noqa: E402
from nucseg.utils.slide import open_image_source  # noqa: E402

OVERLAY_SUFFIX = '_overlay'


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Instance segmentation of images and slides with a '
        'nucseg config')
    parser.add_argument('config', help='model config file')
    parser.add_argument('input', help='image/slide file or folder')
    parser.add_argument('--out', required=True, help='output folder')
    parser.add_argument(
        '--checkpoint', help='trained weights (omit for training-free '
        'models)')
    parser.add_argument(
        '--device', help='cpu, cuda, cuda:1 ... (default: cuda if present)')
    parser.add_argument(
        '--format', nargs='+', choices=FORMATS, metavar='FORMAT',
        help=f'outputs, any of {" ".join(FORMATS)} (default: labels)')
    parser.add_argument(
        '--overlay', action='store_true',
        help='also write <name>_overlay.png (same as adding overlay to '
        '--format)')
    parser.add_argument(
        '--mpp', type=float,
        help='microns per pixel of the inputs (default: from their '
        'metadata, else the config\'s infer_cfg.mpp)')
    parser.add_argument('--tile-size', type=int,
                        help='tile side in px (default: infer_cfg)')
    parser.add_argument('--overlap', type=int,
                        help='tile overlap in px (default: infer_cfg)')
    parser.add_argument(
        '--tissue', choices=('auto', 'on', 'off'), default='auto',
        help='skip tiles without tissue: auto = on slides only')
    parser.add_argument(
        '--object-type', choices=('detection', 'annotation'),
        default='detection', help='QuPath object type in the GeoJSON')
    parser.add_argument('--classification', default='Nucleus',
                        help='QuPath class name in the GeoJSON')
    parser.add_argument(
        '--simplify', type=float, default=0.5,
        help='GeoJSON polygon simplification tolerance (level-0 px)')
    parser.add_argument('--overlay-max-side', type=int, default=2048,
                        help='longer side of the overlay PNG')
    parser.add_argument(
        '--resume', action='store_true',
        help='skip inputs whose outputs (every --format) already exist')
    parser.add_argument('--no-progress', action='store_true',
                        help='no progress bar')
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
    parser.add_argument(
        '--launcher', choices=('none', 'pytorch'), default='none',
        help='pytorch: one of several torchrun processes '
        '(tools/dist_infer.sh); the inputs are shared among them')
    args = parser.parse_args(argv)
    formats = list(args.format or ['labels'])
    if args.overlay and 'overlay' not in formats:
        formats.append('overlay')
    args.formats = [f for f in FORMATS if f in formats]
    return args


def plan_outputs(images, root, out: Path, formats=('labels', ),
                 recursive: bool = False) -> dict:
    """``{image: {format: path}}``; print renames.

    The ``labels`` entry is the path without suffix (``.png`` or ``.tif``
    is chosen when the instances are counted).

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
                f'--out {out} is {where}: outputs would be written among '
                '(or over) the input images; choose another output folder')
    suffixes = (OVERLAY_SUFFIX, ) if 'overlay' in formats else ()
    names = output_names(images, root, suffixes)
    plan = {}
    for path, name in names.items():
        entry = {}
        for fmt in formats:
            entry[fmt] = {
                'labels': out / name,
                'geojson': out / f'{name}.geojson',
                'csv': out / f'{name}.csv',
                'overlay': out / f'{name}{OVERLAY_SUFFIX}.png',
            }[fmt]
        plan[path] = entry
        if Path(name).name != path.stem:
            shown = f'{name}.png' if 'labels' in formats else name
            print(f'note: {path.name} -> {shown} (another input has the '
                  'same name)')
    inputs = {p.resolve() for p in images}
    clashes = sorted(
        str(p) for entry in plan.values() for p in _files(entry)
        if p.resolve() in inputs)
    if clashes:
        raise FileExistsError(
            f'--out {out} would overwrite {len(clashes)} input image(s), '
            f'e.g. {", ".join(clashes[:3])}; choose another output folder')
    return plan


def _files(entry: dict) -> list:
    """Every file an entry may write (both label candidates)."""
    files = []
    for fmt, path in entry.items():
        if fmt == 'labels':
            files += [path.with_name(path.name + '.png'),
                      path.with_name(path.name + '.tif')]
        else:
            files.append(path)
    return files


def outputs_done(entry: dict) -> bool:
    """Whether every output of an entry exists (``--resume``)."""
    for fmt, path in entry.items():
        if fmt == 'labels':
            if not any(path.with_name(path.name + s).is_file()
                       for s in ('.png', '.tif')):
                return False
        elif not path.is_file():
            return False
    return True


def shard(images: list, rank: int, world: int) -> list:
    """The inputs of one of ``world`` processes: largest files first, each
    to the least loaded process (deterministic on every rank)."""
    if world <= 1:
        return list(images)

    def size(p):
        try:
            return p.stat().st_size
        except OSError:
            return 0

    load = [0] * world
    mine = []
    order = sorted(images, key=lambda p: (-size(p), str(p)))
    for p in order:
        r = min(range(world), key=lambda k: (load[k], k))
        load[r] += max(size(p), 1)
        if r == rank:
            mine.append(p)
    keep = set(mine)
    return [p for p in images if p in keep]


def _init_dist(launcher: str):
    """``(rank, world, device)`` of this process."""
    if launcher == 'none':
        return 0, 1, None
    import torch
    import torch.distributed as dist
    from mmengine.dist import get_dist_info
    if not dist.is_initialized():
        if torch.cuda.is_available():
            from mmengine.dist import init_dist
            init_dist('pytorch', backend='nccl')
        else:
            dist.init_process_group(backend='gloo')
    rank, world = get_dist_info()
    device = None
    if torch.cuda.is_available():
        device = f'cuda:{int(os.environ.get("LOCAL_RANK", rank))}'
    return rank, world, device


def _sinks(entry: dict, args, name: str):
    sinks, label_writer = [], None
    if 'labels' in entry:
        label_writer = LabelMapWriter(entry['labels'])
        sinks.append(label_writer)
    if 'geojson' in entry or 'csv' in entry:
        sinks.append(NucleiExporter(
            entry.get('geojson'), entry.get('csv'),
            object_type=args.object_type,
            classification=args.classification, simplify=args.simplify,
            name=name))
    if 'overlay' in entry:
        sinks.append(OverlayWriter(entry['overlay'], args.overlay_max_side))
    return sinks, label_writer


def _summary(result, source, label_writer) -> str:
    plan = result.plan
    mpx = plan.height * plan.width / 1e6
    parts = [f'{result.num_instances} instances']
    tiles = f'{result.tiles_run} tile(s)'
    if result.tissue_fraction is not None:
        tiles = (f'tissue {100 * result.tissue_fraction:.1f} %: '
                 f'{result.tiles_run} of {result.tiles} tiles processed')
    parts.append(tiles)
    speed = result.seconds / max(mpx, 1e-9)
    parts.append(f'{result.seconds:.1f} s ({speed:.2f} s/Mpx)')
    scale = (f'{plan.mpp:g} um/px' if plan.mpp else 'native scale')
    if plan.downsample != 1.0 or plan.level:
        scale += (f' (level {plan.level}, x{1 / plan.downsample:.3g} of '
                  'level 0)')
    parts.append(scale)
    line = ', '.join(parts)
    if label_writer is not None and label_writer.path is not None:
        line += f'; labels: {label_writer.kind} {label_writer.path}'
    return line


def main(argv=None) -> int:
    args = parse_args(argv)
    source_path = Path(args.input)
    rank, world, dist_device = _init_dist(args.launcher)
    tag = f'[rank {rank}] ' if world > 1 else ''
    try:
        images = list_images(source_path, args.recursive)
    except FileNotFoundError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    root = source_path if source_path.is_dir() else None
    if root is not None and not args.recursive and rank == 0:
        subdirs = sorted(p.name for p in root.iterdir() if p.is_dir())
        if subdirs:
            print(f'note: {len(subdirs)} sub-folder(s) of {root} not '
                  f'searched (use --recursive): {", ".join(subdirs[:5])}'
                  + (' ...' if len(subdirs) > 5 else ''))
    out = Path(args.out)
    try:
        plan = plan_outputs(images, root, out, args.formats,
                            args.recursive)
    except FileExistsError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    todo = shard(images, rank, world)
    if world > 1:
        print(f'{tag}{len(todo)} of {len(images)} input(s) for this '
              f'process ({world} processes)', flush=True)
    if args.resume:
        done = [p for p in todo if outputs_done(plan[p])]
        if done:
            print(f'{tag}resume: {len(done)} of {len(todo)} input(s) '
                  'already have every output; skipped', flush=True)
        todo = [p for p in todo if p not in set(done)]

    print(f'{tag}loading model of {args.config}' +
          (f' with weights {args.checkpoint}' if args.checkpoint else
           ' (no checkpoint)') + ' ...', flush=True)
    t0 = time.time()
    try:
        model = init_model(args.config, args.checkpoint,
                           args.device or dist_device, args.cfg_options,
                           strict=not args.non_strict,
                           allow_random_weights=args.allow_random_weights)
        inferencer = TiledInferencer(
            model, tile_size=args.tile_size, overlap=args.overlap,
            tissue=args.tissue, progress=not args.no_progress)
    except (CheckpointError, UnknownKeyError, FileNotFoundError,
            ValueError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    device = next(model.parameters(), None)
    device = device.device if device is not None else args.device or 'cpu'
    st = inferencer.settings
    print(f'{tag}model {type(model).__name__} ready on {device} in '
          f'{time.time() - t0:.1f} s; tiles {st["tile_size"]} px, overlap '
          f'{st["overlap"]} px, '
          + (f'{st["mpp"]:g} um/px' if st['mpp'] else 'no declared mpp')
          + f'; {len(todo)} input(s) to process', flush=True)
    for note in inferencer.notes:
        print(f'{tag}note: {note}')
    out.mkdir(parents=True, exist_ok=True)
    failed, written, seen_notes = [], 0, set()
    for i, path in enumerate(todo, 1):
        entry = plan[path]
        name = str(entry.get('labels', path.stem))
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter('always')
                source = open_image_source(path, mpp=args.mpp)
            try:
                source.notes += [str(w.message) for w in caught
                                 if str(w.message) not in source.notes]
                sinks, label_writer = _sinks(entry, args, Path(name).name)
                result = inferencer.run(source, sinks, name=str(path))
            finally:
                source.close()
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as err:  # one bad input must not stop the folder
            reason = str(err).splitlines()[0] if str(err) else ''
            if str(path) not in reason:
                reason = f'{path}: {type(err).__name__}: {reason}'
            print(f'{tag}[{i}/{len(todo)}] skipped {path.name}: {reason}',
                  file=sys.stderr, flush=True)
            failed.append(path)
            continue
        if result.plan.note and result.plan.note not in seen_notes:
            seen_notes.add(result.plan.note)
            print(f'{tag}note: {result.plan.note} (first: {path.name})',
                  file=sys.stderr)
        for note in result.notes:
            print(f'{tag}warning: {note}', file=sys.stderr)
        written += 1
        print(f'{tag}[{i}/{len(todo)}] {path.name}: '
              f'{_summary(result, source, label_writer)}', flush=True)
    if world > 1:
        from mmengine.dist import all_gather_object, barrier
        gathered = all_gather_object((written, [str(p) for p in failed]))
        barrier()
        written = sum(g[0] for g in gathered)
        failed = [Path(p) for g in gathered for p in g[1]]
        if rank != 0:
            return 1 if failed else 0
    total = written + len(failed)
    what = 'label map(s)' if 'labels' in args.formats else 'result(s)'
    others = [f for f in args.formats if f != 'labels']
    print(f'wrote {written} {what} to {out}' +
          (f' (with {", ".join(others)})' if others else ''))
    if failed:
        print(f'{len(failed)} of {total} images failed: '
              + ', '.join(str(p) for p in failed), file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
