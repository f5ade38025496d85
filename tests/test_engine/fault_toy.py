"""A seconds-fast in-process training set-up for fault tests.

``FaultToyModel`` fits a linear map; its loss turns NaN from iteration
``nan_at`` on (1-based), to exercise :class:`NonFiniteLossHook`.
"""
import math
import uuid

import torch
from mmengine.config import Config
from mmengine.model import BaseModel
from torch import nn

from nucseg.registry import MODELS


@MODELS.register_module(force=True)
class FaultToyModel(BaseModel):
    """``y = w x``; ``loss`` (and ``loss_aux``) NaN from ``nan_at`` on."""

    def __init__(self, nan_at: int = 0, nan_term: str = 'loss_fit') -> None:
        super().__init__()
        self.linear = nn.Linear(2, 1)
        self.nan_at = nan_at
        self.nan_term = nan_term
        self.calls = 0

    def forward(self, inputs, data_samples=None, mode='tensor'):
        x = torch.stack(inputs) if isinstance(inputs, list) else inputs
        pred = self.linear(x.float())
        if mode != 'loss':
            return [dict(pred=p) for p in pred]
        self.calls += 1
        target = x.float().sum(1, keepdim=True)
        losses = dict(loss_fit=((pred - target)**2).mean(),
                      loss_aux=pred.abs().mean() * 0.0)
        if self.nan_at and self.calls >= self.nan_at:
            losses[self.nan_term] = losses[self.nan_term] * math.nan
        return losses


def toy_data(n: int = 8) -> list:
    g = torch.Generator().manual_seed(0)
    return [dict(inputs=torch.randn(2, generator=g)) for _ in range(n)]


def toy_cfg(work_dir, max_iters: int = 4, interval: int = 2,
            **extra) -> Config:
    """A NucsegRunner config for :class:`FaultToyModel`."""
    cfg = dict(
        default_scope='nucseg',
        runner_type='NucsegRunner',
        model=dict(type='FaultToyModel'),
        work_dir=str(work_dir),
        train_dataloader=dict(
            dataset=toy_data(),
            sampler=dict(type='InfiniteSampler', shuffle=True),
            batch_size=2,
            num_workers=0),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', by_epoch=False,
                            interval=interval),
            logger=dict(type='LoggerHook', interval=1)),
        log_processor=dict(by_epoch=False),
        randomness=dict(seed=0),
        experiment_name=f'toy_{uuid.uuid4().hex[:12]}',
        env_cfg=dict(dist_cfg=dict(backend='gloo')),
    )
    cfg.update(extra)
    return Config(cfg)
