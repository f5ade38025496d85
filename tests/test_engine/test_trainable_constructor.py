"""Optimizer over trainable parameters only (each once)."""
import pytest
import torch
from mmengine.optim import build_optim_wrapper
from torch import nn

from nucseg.engine.optimizers import TrainableParamsOptimWrapperConstructor
from nucseg.utils import register_all_modules


@pytest.fixture(autouse=True)
def _scope():
    register_all_modules()


class Shared(nn.Module):
    """A frozen part, a trainable part and a module reachable twice."""

    def __init__(self):
        super().__init__()
        self.frozen = nn.Linear(3, 3)
        self.conv = nn.Conv2d(3, 3, 1)
        self.seq = nn.Sequential(self.conv, nn.ReLU())  # same conv again
        for p in self.frozen.parameters():
            p.requires_grad = False


def _cfg(**kw):
    return dict(type='OptimWrapper',
                constructor='TrainableParamsOptimWrapperConstructor',
                optimizer=dict(type='SGD', lr=0.1, momentum=0.9), **kw)


@pytest.mark.parametrize('paramwise', [None, dict(bias_lr_mult=2.)])
def test_only_trainable_parameters_each_once(paramwise):
    model = Shared()
    cfg = _cfg() if paramwise is None else _cfg(paramwise_cfg=paramwise)
    optim = build_optim_wrapper(model, cfg)
    # (mmengine's OptimWrapper adds a dummy scalar group for logging when
    # there are several groups)
    own = {id(p) for p in model.parameters()}
    params = [p for g in optim.param_groups for p in g['params']
              if id(p) in own]
    assert len(params) == len({id(p) for p in params}) == 2
    assert {id(p) for p in params} == {id(p) for p in model.conv.parameters()}
    x = torch.randn(1, 3, 2, 2)
    optim.update_params(model.seq(x).sum() + model.frozen(
        torch.randn(1, 3)).sum())
    assert set(map(id, optim.optimizer.state)) <= {
        id(p) for p in model.conv.parameters()}


def test_mmengine_default_constructor_keeps_frozen_parameters():
    # what this constructor fixes: the default hands frozen ones over
    model = Shared()
    cfg = _cfg()
    cfg.pop('constructor')
    optim = build_optim_wrapper(model, cfg)
    ids = {id(p) for g in optim.param_groups for p in g['params']}
    assert id(model.frozen.weight) in ids


def test_no_trainable_parameter_is_an_error():
    model = nn.Linear(2, 2)
    for p in model.parameters():
        p.requires_grad = False
    with pytest.raises(ValueError, match='no trainable parameter'):
        TrainableParamsOptimWrapperConstructor(
            dict(optimizer=dict(type='SGD', lr=0.1)))(model)
