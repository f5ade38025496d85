"""Train a nucseg model (MMSegmentation-compatible command line).

Example::

    python tools/train.py configs/unet/<config>.py
    python tools/train.py CONFIG --resume --work-dir work_dirs/x
    bash tools/dist_train.sh CONFIG 2  # on CPU the gloo backend is used

Runs :class:`nucseg.engine.NucsegRunner` (unless the config names another
``runner_type``): ``load_from`` is loaded only if trusted and strictly
(``--non-strict`` to relax), checkpoints are written atomically,
``--resume`` falls back to the newest checkpoint that loads, and training
stops at the first non-finite loss. Such errors are printed as
``error: ...`` with exit status 1.
"""
import argparse
import logging
import os
import os.path as osp
import sys

from mmengine.config import Config, DictAction
from mmengine.logging import print_log

try:
    import nucseg  # noqa: F401
except ImportError:  # running from a source checkout without install
    sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from nucseg.engine.hooks import NonFiniteLossError  # noqa: E402
from nucseg.registry import RUNNERS  # noqa: E402
from nucseg.utils import register_all_modules  # noqa: E402
from nucseg.utils.checkpoint import CheckpointError  # noqa: E402
from nucseg.utils.config_check import UnknownKeyError  # noqa: E402
from nucseg.utils.dist import setup_cpu_distributed  # noqa: E402
from nucseg.utils.io import ImageReadError, LabelError  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a nucseg model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume',
        action='store_true',
        default=False,
        help='resume from the latest checkpoint in the work_dir (the newest '
        'one that loads; unreadable ones are skipped with a warning)')
    parser.add_argument(
        '--non-strict',
        action='store_true',
        help='load_from: allow checkpoint keys/shapes that do not match '
        'the model (skipped with a warning), e.g. to fine-tune a new head')
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
    args = parser.parse_args(argv)
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


def main(argv=None) -> int:
    args = parse_args(argv)
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
    if args.non_strict:
        cfg.strict_load = False
    cfg.setdefault('runner_type', 'NucsegRunner')

    setup_cpu_distributed(cfg)
    try:
        runner = RUNNERS.build(cfg)
        runner.train()
    except (CheckpointError, NonFiniteLossError, UnknownKeyError,
            ImageReadError, LabelError) as err:
        print(f'error: {err}', file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
