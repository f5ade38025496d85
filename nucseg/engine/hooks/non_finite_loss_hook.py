"""Stop training at the first NaN or inf loss."""
import math
from typing import Optional

import torch
from mmengine.hooks import Hook

from nucseg.registry import HOOKS

__all__ = ['NonFiniteLossError', 'NonFiniteLossHook', 'non_finite_losses']


class NonFiniteLossError(FloatingPointError):
    """A training loss became NaN or inf."""


def non_finite_losses(outputs) -> dict:
    """The entries of a ``train_step`` output whose name contains
    ``'loss'`` and whose value is not finite, as ``{name: float}``.

    Works for any model: ``train_step`` returns the log variables (one
    optimizer, or several in a custom ``train_step``) as a dict of scalars
    or tensors.
    """
    bad = {}
    if not isinstance(outputs, dict):
        return bad
    for key, value in outputs.items():
        if 'loss' not in str(key):
            continue
        if isinstance(value, torch.Tensor):
            flat = value.detach().float().flatten()
            wrong = flat[~torch.isfinite(flat)]
            if wrong.numel():
                bad[key] = float(wrong[0])
        elif isinstance(value, (int, float)) and not math.isfinite(value):
            bad[key] = float(value)
    return bad


@HOOKS.register_module()
class NonFiniteLossHook(Hook):
    """Stop training at the first non-finite loss, before it is saved.

    After every training iteration the dict returned by the model's
    ``train_step`` (its log variables: ``loss``, ``loss_ce``, ...; models
    with several optimizers return theirs the same way) is checked; if a
    term whose name contains ``loss`` is NaN or inf, training stops with
    :class:`NonFiniteLossError` naming the terms and the iteration. The
    hook runs before the checkpoint hook of the same iteration (priority
    ``LOW`` < ``VERY_LOW``), so no checkpoint of that state is written and
    ``last_checkpoint`` keeps pointing at the last finite one. On in
    ``configs/_base_/default_runtime.py``.
    """

    priority = 'LOW'

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs: Optional[dict] = None) -> None:
        bad = non_finite_losses(outputs)
        if not bad:
            return
        # The terms first, the total (``loss``) they sum to last.
        terms = ', '.join(f'{k}={bad[k]}'
                          for k in sorted(bad, key=lambda k: k == 'loss'))
        last = runner.message_hub.get_info('last_ckpt')
        raise NonFiniteLossError(
            f'non-finite loss at iteration {runner.iter + 1}: {terms}. '
            'Training stopped; no checkpoint of this state was saved'
            + (f' (last checkpoint: {last})' if last else '') +
            '. Lower the learning rate, check the data of this batch, or '
            'use AMP loss scaling.')
