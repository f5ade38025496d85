"""Evaluate a nucseg model (MMSegmentation-compatible command line).

Example::

    python tools/test.py CONFIG CHECKPOINT --work-dir work_dirs/x \
        --show-dir overlays --out preds

``CHECKPOINT`` may be omitted for training-free models. Metrics are
printed, logged and written to ``<work_dir>/metrics.json``.
"""
import argparse
import json
import os
import os.path as osp
import sys

from mmengine.config import Config, DictAction
from mmengine.runner import Runner

try:
    import nucseg  # noqa: F401
except ImportError:  # running from a source checkout without install
    sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from nucseg.registry import RUNNERS  # noqa: E402
from nucseg.utils import register_all_modules  # noqa: E402
from nucseg.utils.dist import setup_cpu_distributed  # noqa: E402


def parse_args() -> argparse.Namespace:
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
        help='folder to write predicted instance maps (<name>.png, uint16)')
    parser.add_argument(
        '--show-dir',
        help='folder (under the run log dir) for image|GT|prediction '
        'overlay panels of every test image')
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
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def _set_hook(cfg: Config, hook: dict) -> None:
    """Add ``hook`` to ``custom_hooks``, replacing one of the same type."""
    hooks = [
        h for h in cfg.get('custom_hooks', []) if h.get('type') != hook['type']
    ]
    cfg.custom_hooks = hooks + [hook]


def main() -> None:
    args = parse_args()
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
    if args.show_dir:
        _set_hook(cfg,
                  dict(type='InstanceOverlayHook', out_dir=args.show_dir,
                       max_images=-1))
    if args.out:
        _set_hook(cfg, dict(type='SaveInstanceMapsHook', out_dir=args.out))

    setup_cpu_distributed(cfg)
    runner = (Runner.from_cfg(cfg)
              if 'runner_type' not in cfg else RUNNERS.build(cfg))
    metrics = runner.test()
    if runner.rank == 0:
        os.makedirs(cfg.work_dir, exist_ok=True)
        with open(osp.join(cfg.work_dir, 'metrics.json'), 'w') as f:
            json.dump({k: float(v) for k, v in metrics.items()}, f, indent=2)


if __name__ == '__main__':
    main()
