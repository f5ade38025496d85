"""Schedule of the gradient-reversal strength (lambda of Eq. 2)."""
import math
from typing import Optional

from nucseg.registry import HOOKS
from .model_attribute_hook import ModelAttributeHook

SCHEDULES = ('constant', 'linear', 'dann')


@HOOKS.register_module()
class GRLLambdaHook(ModelAttributeHook):
    """Set ``model.grl_lambda`` before every training iteration.

    Schedules, with ``p = iter / ramp_iters`` clipped to ``[0, 1]``:

    - ``'constant'``: ``lambd`` (the AMA-SAM paper's setting).
    - ``'linear'``: ``lambd * p``.
    - ``'dann'``: ``lambd * (2 / (1 + exp(-gamma * p)) - 1)`` (Ganin and
      Lempitsky, 2015), which starts at 0 and saturates at ``lambd``.

    The current value is logged as ``train/grl_lambda``.

    Args:
        lambd (float): Final (or constant) strength.
        schedule (str): One of ``'constant'``, ``'linear'``, ``'dann'``.
        ramp_iters (int, optional): Length of the ramp; defaults to the
            training loop's ``max_iters``.
        gamma (float): Steepness of the ``'dann'`` schedule.
        attr (str): Model attribute to set.
    """

    log_name = 'grl_lambda'

    def __init__(self,
                 lambd: float = 1.0,
                 schedule: str = 'constant',
                 ramp_iters: Optional[int] = None,
                 gamma: float = 10.0,
                 attr: str = 'grl_lambda') -> None:
        if schedule not in SCHEDULES:
            raise ValueError(f'schedule must be one of {SCHEDULES}, got '
                             f'{schedule!r}')
        if ramp_iters is not None and ramp_iters <= 0:
            raise ValueError(f'ramp_iters must be positive, got {ramp_iters}')
        self.lambd = float(lambd)
        self.schedule = schedule
        self.ramp_iters = ramp_iters
        self.gamma = float(gamma)
        self.attr = attr

    def value(self, cur_iter: int, max_iters: int) -> float:
        """Lambda at iteration ``cur_iter`` (0-based)."""
        if self.schedule == 'constant':
            return self.lambd
        ramp = self.ramp_iters or max(max_iters, 1)
        p = min(max(cur_iter / ramp, 0.0), 1.0)
        if self.schedule == 'linear':
            return self.lambd * p
        return self.lambd * (2.0 / (1.0 + math.exp(-self.gamma * p)) - 1.0)

    def current_value(self, runner) -> float:
        return self.value(runner.iter, runner.max_iters)
