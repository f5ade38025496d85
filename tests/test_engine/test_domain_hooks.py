"""GRLLambdaHook and DiscriminatorAccuracyHook with a minimal runner."""
import math
from types import SimpleNamespace

import pytest
import torch
from mmengine.logging import MessageHub
from torch import nn

from nucseg.engine.hooks import DiscriminatorAccuracyHook, GRLLambdaHook


class _Model(nn.Module):

    def __init__(self):
        super().__init__()
        self.grl_lambda = -1.0
        self.last_domain_logits = None


def _runner(model, it=0, max_iters=100, name='hooktest'):
    hub = MessageHub.get_instance(f'{name}-{id(model)}-{it}')
    return SimpleNamespace(model=model, iter=it, max_iters=max_iters,
                           message_hub=hub)


@pytest.mark.parametrize('schedule,it,expected', [
    ('constant', 0, 0.5),
    ('constant', 99, 0.5),
    ('linear', 0, 0.0),
    ('linear', 25, 0.125),
    ('linear', 200, 0.5),  # clipped after the ramp
    ('dann', 0, 0.0),
    ('dann', 50, 0.5 * (2 / (1 + math.exp(-5)) - 1)),
])
def test_grl_lambda_schedules(schedule, it, expected):
    model = _Model()
    runner = _runner(model, it=it)
    GRLLambdaHook(lambd=0.5, schedule=schedule).before_train_iter(runner, 0)
    assert model.grl_lambda == pytest.approx(expected)
    assert runner.message_hub.get_scalar(
        'train/grl_lambda').current() == pytest.approx(expected)


def test_grl_lambda_hook_errors():
    with pytest.raises(ValueError, match='schedule'):
        GRLLambdaHook(schedule='cosine')
    runner = _runner(nn.Linear(1, 1))
    with pytest.raises(AttributeError, match='grl_lambda'):
        GRLLambdaHook().before_train_iter(runner, 0)


def test_discriminator_accuracy_per_domain():
    model = _Model()
    runner = _runner(model, it=0)
    hook = DiscriminatorAccuracyHook(interval=2)
    # primary: 2 right of 2; tnbc: 1 right of 2; cryo: 0 of 1.
    model.last_domain_logits = dict(
        logits=torch.tensor([2.0, 0.5, -1.0, 3.0, 1.0]),
        is_primary=torch.tensor([True, True, False, False, False]),
        domain=['monuseg', 'monuseg', 'tnbc', 'tnbc', 'cryo'])
    hook.after_train_iter(runner, 0)
    hub = runner.message_hub

    def acc(name):
        return hub.get_scalar(f'train/disc_acc_{name}').current()

    assert (acc('monuseg'), acc('tnbc'), acc('cryo')) == (100., 50., 0.)
    assert model.last_domain_logits is None  # consumed
    # Second batch of the window: tnbc 2 of 2 -> 3 of 4 over the window.
    model.last_domain_logits = dict(
        logits=torch.tensor([-1.0, -2.0]),
        is_primary=torch.tensor([False, False]),
        domain=['tnbc', 'tnbc'])
    runner.iter = 1
    hook.after_train_iter(runner, 1)
    assert acc('tnbc') == 75.0 and acc('monuseg') == 100.0
    # A new window starts from scratch.
    runner.iter = 2
    model.last_domain_logits = dict(
        logits=torch.tensor([1.0]), is_primary=torch.tensor([False]),
        domain=['tnbc'])
    hook.after_train_iter(runner, 2)
    assert acc('tnbc') == 0.0
    with pytest.raises(ValueError, match='interval'):
        DiscriminatorAccuracyHook(interval=0)
