"""Task re-weighting of CyC-PDAM (Liu et al., CVPR 2020, Eq. 3)."""
from typing import Optional, Sequence

import torch
from torch import Tensor

__all__ = ['task_reweight', 'source_probability']


def source_probability(logits: Tensor, source_label: int = 1,
                       both_channels: bool = False) -> Tensor:
    """Probability of the source domain from discriminator logits.

    Args:
        logits (Tensor): ``N x 2 x ...`` two-way logits (image and
            semantic levels) or ``(N,)`` single logits of "source"
            (instance level, sigmoid).
        source_label (int): Channel of the source domain for 2-way logits.
        both_channels (bool): Return the softmax of *both* channels, as
            the authors' code does at the image and semantic levels (its
            re-weight then averages ``(1 - p) / p`` over the source and
            the target channel, which is >= 1).

    Returns:
        Tensor: Probabilities in ``(0, 1)``, detached.
    """
    logits = logits.detach().float()
    if logits.dim() >= 2 and logits.shape[1] == 2:
        prob = logits.softmax(1)
        return prob if both_channels else prob[:, source_label]
    return logits.sigmoid()


def task_reweight(p_source: Tensor,
                  beta: Optional[float] = 2.0,
                  clamp: Optional[Sequence[float]] = None,
                  eps: float = 1e-6) -> Tensor:
    """Weight of a task loss from the discriminator's source probability.

    Eq. 3: ``L_rw = min((1 - p_s) / p_s, beta) * L``. The ratio is
    averaged over every prediction of the batch (positions of a patch
    discriminator, RoIs), as the authors do, and then bounded: above by
    ``beta`` (the paper, beta = 2) or to ``clamp = (low, high)`` (the
    authors' code: ``(0.5, 1.5)``). Source-looking features (``p_s -> 1``)
    down-weight the task loss; features the discriminator cannot tell
    apart (``p_s = 0.5``) give weight 1.

    Args:
        p_source (Tensor): Source probabilities, any shape.
        beta (float, optional): Upper bound (ignored when ``clamp`` is
            given).
        clamp (Sequence[float], optional): ``(low, high)`` bounds.
        eps (float): Guard against ``p_s = 0``.

    Returns:
        Tensor: Scalar weight (no gradient); 1 for an empty input.
    """
    p = p_source.detach().float().clamp(eps, 1.0)
    if p.numel() == 0:
        return torch.ones((), device=p.device)
    ratio = ((1.0 - p) / p).mean()
    if clamp is not None:
        low, high = float(clamp[0]), float(clamp[1])
        if low > high:
            raise ValueError(f'clamp must be (low, high), got {clamp}')
        return ratio.clamp(low, high)
    if beta is not None:
        return ratio.clamp(max=float(beta))
    return ratio
