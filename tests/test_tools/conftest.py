import os
import subprocess
import sys

import pytest

CONFIG = 'configs/unet/unet-s5-c16_contour_1xb4-300it_synth-he-256x256.py'


def tiny_options(data_root: str, iters: int = 4, interval: int = 2) -> list:
    """--cfg-options turning the demo config into a seconds-long run."""
    opts = [
        f'train_cfg.max_iters={iters}', f'train_cfg.val_interval={interval}',
        f'default_hooks.checkpoint.interval={interval}',
        'default_hooks.logger.interval=1',
        'train_dataloader.batch_size=2',
        'train_dataloader.dataset.pipeline.2.crop_size=[64,64]',
        'model.backbone.base_channels=4', 'model.decode_head.in_channels=4',
        'model.decode_head.channels=4',
        'param_scheduler.0.end=1', 'param_scheduler.1.begin=1',
        f'param_scheduler.1.end={iters}',
        'env_cfg.dist_cfg.backend=gloo',
    ]
    for split in ('train', 'val', 'test'):
        opts += [
            f'{split}_dataloader.dataset.data_root={data_root}',
            f'{split}_dataloader.num_workers=0',
            f'{split}_dataloader.persistent_workers=False',
        ]
    return opts


def run_tool(args: list, cwd, timeout: int = 600,
             env_extra: dict = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS='1', **(env_extra or {}))
    proc = subprocess.run([sys.executable] + args, cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        pytest.fail(f'{args[0]} failed ({proc.returncode}):\n'
                    f'{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}')
    return proc
