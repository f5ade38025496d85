"""Evaluate a nucseg model (MMSegmentation-compatible command line).

Example::

    python tools/test.py CONFIG CHECKPOINT --work-dir work_dirs/x \
        --show-dir overlays --out preds

``CHECKPOINT`` may be omitted only for training-free models (others are
refused unless ``--allow-random-weights``); it is loaded only if trusted
and strictly unless ``--non-strict``. Metrics are printed, logged and
written to ``<work_dir>/metrics.json``; a metric that is not a finite
number (e.g. the Hausdorff distance of an image without any predicted
nucleus is infinite) is written as ``null``, so the file is valid JSON.

As in MMSegmentation, a relative ``--show-dir`` lands in the run's log
folder ``<work_dir>/<timestamp>/``; a relative ``--out`` does too (absolute
paths are used as given). Where everything went is printed at the end.
"""
import argparse
import json
import math
import os
import os.path as osp
import sys

from mmengine.config import Config, DictAction

try:
    import nucseg  # noqa: F401
except ImportError:  # running from a source checkout without install
    sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from nucseg.registry import RUNNERS  # noqa: E402
from nucseg.utils import register_all_modules  # noqa: E402
from nucseg.utils.checkpoint import CheckpointError  # noqa: E402
from nucseg.utils.config_check import UnknownKeyError  # noqa: E402
from nucseg.utils.dist import setup_cpu_distributed  # noqa: E402
from nucseg.utils.io import ImageReadError, LabelError  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test a nucseg model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument(
        'checkpoint',
        nargs='?',
        default=None,
        help='checkpoint file (omit for training-free models)')
    parser.add_argument(
        '--work-dir', help='the dir to save logs and metrics.json')
    parser.add_argument(
        '--out',
        help='folder to write predicted instance maps (<name>.png, '
        'uint16); a relative path is taken under <work_dir>/<timestamp>/')
    parser.add_argument(
        '--show-dir',
        help='folder for image|GT|prediction overlay panels of every test '
        'image; a relative path is taken under <work_dir>/<timestamp>/')
    parser.add_argument(
        '--non-strict',
        action='store_true',
        help='load a checkpoint whose keys do not match the model exactly '
        '(mismatches are skipped with a warning)')
    parser.add_argument(
        '--allow-random-weights',
        action='store_true',
        help='test a model that must be trained without a checkpoint '
        '(debugging only)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config, key=value pairs')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def _set_hook(cfg: Config, hook: dict) -> None:
    """Add ``hook`` to ``custom_hooks``, replacing one of the same type."""
    hooks = [
        h for h in cfg.get('custom_hooks', []) if h.get('type') != hook['type']
    ]
    cfg.custom_hooks = hooks + [hook]


def finite_or_none(value):
    """``float(value)``, or ``None`` (JSON ``null``) if not finite."""
    value = float(value)
    return value if math.isfinite(value) else None


def main(argv=None) -> int:
    args = parse_args(argv)
    register_all_modules(init_default_scope=False)

    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    cfg.load_from = args.checkpoint
    if args.non_strict:
        cfg.strict_load = False
    if args.allow_random_weights:
        cfg.allow_random_weights = True
    if args.show_dir:
        _set_hook(cfg,
                  dict(type='InstanceOverlayHook', out_dir=args.show_dir,
                       max_images=-1))
    if args.out:
        _set_hook(cfg, dict(type='SaveInstanceMapsHook', out_dir=args.out))
    cfg.setdefault('runner_type', 'NucsegRunner')

    setup_cpu_distributed(cfg)
    try:
        runner = RUNNERS.build(cfg)
        metrics = runner.test()
    except (CheckpointError, UnknownKeyError, ImageReadError,
            LabelError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    if runner.rank == 0:
        os.makedirs(cfg.work_dir, exist_ok=True)
        path = osp.join(cfg.work_dir, 'metrics.json')
        with open(path, 'w') as f:
            json.dump({k: finite_or_none(v)
                       for k, v in metrics.items()}, f, indent=2,
                      allow_nan=False)
        print(f'metrics: {osp.abspath(path)}')
        if args.out:
            print('instance maps: '
                  f'{osp.abspath(osp.join(runner.log_dir, args.out))}')
        if args.show_dir:
            print('overlays: '
                  f'{osp.abspath(osp.join(runner.log_dir, args.show_dir))}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
