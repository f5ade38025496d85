"""Gaussian ramp-up of the self-ensembling weight lambda(E) (Eq. 5)."""
import math
from typing import Optional

from mmengine.runner import EpochBasedTrainLoop

from nucseg.registry import HOOKS
from .model_attribute_hook import ModelAttributeHook

__all__ = ['gaussian_rampup', 'ConsistencyRampHook']


def gaussian_rampup(epoch: float, peak: float, scale: float = 1.0) -> float:
    """``scale * exp(-5 (1 - min(epoch, peak) / peak) ** 2)``.

    The mean-teacher / temporal-ensembling ramp-up (Laine and Aila 2017):
    ``scale * exp(-5)`` (0.0067 scale) at epoch 0, ``scale * exp(-1.25)``
    (0.29 scale) half-way, ``scale`` from ``peak`` on.

    Args:
        epoch (float): Training progress ``E`` (epochs, may be fractional).
        peak (float): ``e``, where the ramp reaches ``scale`` (> 0).
        scale (float): ``k``, the maximum.

    Returns:
        float: ``lambda(E)``.
    """
    if not peak > 0:
        raise ValueError(f'peak must be > 0, got {peak}')
    if epoch < 0:
        raise ValueError(f'epoch must be >= 0, got {epoch}')
    t = 1.0 - min(float(epoch), float(peak)) / float(peak)
    return float(scale) * math.exp(-5.0 * t * t)


@HOOKS.register_module()
class ConsistencyRampHook(ModelAttributeHook):
    """Set the model's self-ensembling weight before every iteration.

    The paper's Eq. 5 is garbled in the text ("lambda = k * e^{||e - E||}
    ... a Gaussian ramp-up curve that slowly drop down", k = 1, peak e = 30
    epochs); the Gaussian ramp-up of the mean-teacher family,
    :func:`gaussian_rampup`, is used: ``k exp(-5 (1 - min(E, e)/e)^2)``.

    ``E`` is the epoch for epoch-based training loops (updated per epoch).
    For iteration-based loops it is ``iter / iters_per_epoch`` (fractional
    epochs, updated per iteration), or ``iter`` itself when
    ``iters_per_epoch`` is None (``peak`` then counts iterations). The
    value is written to the (unwrapped) model's ``attr`` and logged as
    ``train/consistency_weight``; being computed from the runner's counter
    it is restored on ``--resume``.

    Args:
        peak (float): ``e`` in epochs (iterations without
            ``iters_per_epoch`` in an iteration-based loop); 30 in the
            paper.
        scale (float): ``k``; 1.0 in the paper.
        iters_per_epoch (int, optional): Iterations that make one epoch
            in an iteration-based loop (e.g. the number of source training
            images for one source image per batch).
        attr (str): Model attribute to set.
    """

    log_name = 'consistency_weight'

    def __init__(self,
                 peak: float = 30.0,
                 scale: float = 1.0,
                 iters_per_epoch: Optional[int] = None,
                 attr: str = 'consistency_weight') -> None:
        if not peak > 0:
            raise ValueError(f'ConsistencyRampHook.peak must be > 0, got '
                             f'{peak}')
        if scale < 0:
            raise ValueError(f'ConsistencyRampHook.scale must be >= 0, got '
                             f'{scale}')
        if iters_per_epoch is not None and (
                isinstance(iters_per_epoch, bool)
                or int(iters_per_epoch) != iters_per_epoch
                or iters_per_epoch < 1):
            raise ValueError(
                'ConsistencyRampHook.iters_per_epoch must be a positive '
                f'integer or None, got {iters_per_epoch!r}')
        self.peak = float(peak)
        self.scale = float(scale)
        self.iters_per_epoch = iters_per_epoch
        self.attr = attr

    def progress(self, runner) -> float:
        """``E`` for the runner's current state."""
        if isinstance(runner.train_loop, EpochBasedTrainLoop):
            return float(runner.epoch)
        if self.iters_per_epoch:
            return runner.iter / self.iters_per_epoch
        return float(runner.iter)

    def current_value(self, runner) -> float:
        return gaussian_rampup(self.progress(runner), self.peak, self.scale)
