"""The Gaussian ramp-up of the self-ensembling weight and its hook."""
import math
from types import SimpleNamespace

import pytest
from mmengine.logging import MessageHub
from mmengine.runner import EpochBasedTrainLoop, IterBasedTrainLoop

from nucseg.engine.hooks import ConsistencyRampHook, gaussian_rampup


@pytest.mark.parametrize('scale', [1.0, 0.5])
def test_gaussian_rampup_values(scale):
    e = 30
    assert gaussian_rampup(0, e, scale) == pytest.approx(scale *
                                                         math.exp(-5))
    assert gaussian_rampup(e / 2, e, scale) == pytest.approx(
        scale * math.exp(-1.25))
    assert gaussian_rampup(e, e, scale) == pytest.approx(scale)
    assert gaussian_rampup(2 * e, e, scale) == pytest.approx(scale)
    values = [gaussian_rampup(x, e, scale) for x in range(0, 2 * e)]
    assert values == sorted(values)  # non-decreasing
    with pytest.raises(ValueError, match='peak'):
        gaussian_rampup(1, 0)
    with pytest.raises(ValueError, match='epoch'):
        gaussian_rampup(-1, 30)


class _Model:
    consistency_weight = None


def _runner(loop_cls, iteration=0, epoch=0):
    loop = loop_cls.__new__(loop_cls)  # only its type matters here
    return SimpleNamespace(
        train_loop=loop, iter=iteration, epoch=epoch, model=_Model(),
        message_hub=MessageHub.get_instance('ramp_hook_test'))


def test_hook_per_iteration_in_fractional_epochs():
    hook = ConsistencyRampHook(peak=30, scale=1.0, iters_per_epoch=40)
    for it, epoch in ((0, 0), (600, 15), (1200, 30), (2400, 60),
                      (620, 15.5)):
        runner = _runner(IterBasedTrainLoop, iteration=it)
        hook.before_train_iter(runner, it)
        assert runner.model.consistency_weight == pytest.approx(
            gaussian_rampup(epoch, 30))
    assert runner.message_hub.get_scalar(
        'train/consistency_weight').current() == pytest.approx(
            gaussian_rampup(15.5, 30))
    # without iters_per_epoch the peak counts iterations
    runner = _runner(IterBasedTrainLoop, iteration=50)
    ConsistencyRampHook(peak=100).before_train_iter(runner, 50)
    assert runner.model.consistency_weight == pytest.approx(
        math.exp(-1.25))


def test_hook_per_epoch_and_errors():
    hook = ConsistencyRampHook(peak=30, iters_per_epoch=40)
    runner = _runner(EpochBasedTrainLoop, iteration=12345, epoch=15)
    hook.before_train_iter(runner, 0)  # the epoch, not the iteration
    assert runner.model.consistency_weight == pytest.approx(
        math.exp(-1.25))
    runner.model = object()
    with pytest.raises(AttributeError, match='consistency_weight'):
        hook.before_train_iter(runner, 0)
    with pytest.raises(ValueError, match='peak'):
        ConsistencyRampHook(peak=0)
    with pytest.raises(ValueError, match='iters_per_epoch'):
        ConsistencyRampHook(iters_per_epoch=0)
    with pytest.raises(ValueError, match='scale'):
        ConsistencyRampHook(scale=-1)
