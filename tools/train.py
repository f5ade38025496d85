"""Train a nucseg model (MMSegmentation-compatible command line).

Example::

    python tools/train.py configs/unet/<config>.py
    python tools/train.py CONFIG --resume --work-dir work_dirs/x
    bash tools/dist_train.sh CONFIG 2  # on CPU the gloo backend is used
"""
import argparse
import logging
import os
import os.path as osp
import sys

from mmengine.config import Config, DictAction
from mmengine.logging import print_log
from mmengine.runner import Runner

try:
    import nucseg  # noqa: F401
except ImportError:  # running from a source checkout without install
    sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from nucseg.registry import RUNNERS  # noqa: E402
from nucseg.utils import register_all_modules  # noqa: E402
from nucseg.utils.dist import setup_cpu_distributed  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a nucseg model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume',
        action='store_true',
        default=False,
        help='resume from the latest checkpoint in the work_dir')
    parser.add_argument(
        '--amp',
        action='store_true',
        default=False,
        help='enable automatic-mixed-precision training')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config, key=value pairs, e.g. '
        'train_cfg.max_iters=10 "model.backbone.base_channels=8"')
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


def enable_amp(cfg: Config) -> None:
    """Switch every optimizer wrapper of ``cfg`` to ``AmpOptimWrapper``."""
    wrapper = cfg.optim_wrapper
    # One wrapper, or several keyed by sub-model (OptimWrapperDict).
    wrappers = [wrapper] if 'optimizer' in wrapper else [
        v for v in wrapper.values()
        if isinstance(v, dict) and 'optimizer' in v
    ]
    for w in wrappers:
        if w.get('type', 'OptimWrapper') == 'AmpOptimWrapper':
            print_log('AMP training is already enabled in the config.',
                      logger='current', level=logging.WARNING)
            continue
        if w.get('type', 'OptimWrapper') != 'OptimWrapper':
            raise ValueError('--amp supports OptimWrapper only, got '
                             f"{w.get('type')}")
        w['type'] = 'AmpOptimWrapper'
        w['loss_scale'] = 'dynamic'


def main() -> None:
    args = parse_args()
    register_all_modules(init_default_scope=False)

    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)

    # work_dir priority: CLI > config > config file name
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    if args.amp:
        enable_amp(cfg)
    cfg.resume = args.resume

    setup_cpu_distributed(cfg)
    runner = (Runner.from_cfg(cfg)
              if 'runner_type' not in cfg else RUNNERS.build(cfg))
    runner.train()


if __name__ == '__main__':
    main()
