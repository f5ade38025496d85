"""Gradient reversal: the plain GRL and AMA-SAM's conditional GRL (CGRL).

Both are the identity in the forward pass. In the backward pass

* :func:`grl` (Ganin & Lempitsky, 2015) multiplies the incoming gradient of
  every sample by ``-lambd``;
* :func:`cgrl` (AMA-SAM, Eq. 2) multiplies the gradient of *auxiliary*
  samples by ``-lambd`` and sets the gradient of *primary* samples to
  exactly zero, so the adversarial loss never changes the primary domain's
  features.

They work on any tensor whose first dimension is the batch (feature maps
``B x C x h x w``, token sequences ``B x N x C``, vectors ``B x C``) and are
the only gradient-reversal implementation of nucseg (AMA-SAM, CyC-PDAM).
``lambd`` is a plain float read at every call, so the modules'
``lambd`` attribute may be changed by a hook during training (e.g. the
DANN schedule ``2 / (1 + exp(-10 p)) - 1``).
"""
import math
from typing import Any, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

from nucseg.registry import MODELS

__all__ = [
    'grl', 'cgrl', 'GradientReversal', 'ConditionalGradientReversal'
]


def _check_lambd(lambd: float) -> float:
    if isinstance(lambd, Tensor):
        if lambd.numel() != 1:
            raise ValueError('lambd must be a scalar, got a tensor of shape '
                             f'{tuple(lambd.shape)}')
        lambd = lambd.item()
    lambd = float(lambd)
    if not math.isfinite(lambd):
        raise ValueError(f'lambd must be finite, got {lambd}')
    return lambd


class _GradientReversalFn(torch.autograd.Function):
    """Identity forward; backward ``grad * (-lambd)``."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, lambd: float) -> Tensor:
        ctx.lambd = lambd
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tuple[Tensor, None]:
        return grad * (-ctx.lambd), None


class _ConditionalGradientReversalFn(torch.autograd.Function):
    """Identity forward; backward 0 (primary) or ``grad * (-lambd)``."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, is_primary: Tensor,
                lambd: float) -> Tensor:
        ctx.lambd = lambd
        ctx.save_for_backward(is_primary)
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tuple[Tensor, None, None]:
        (is_primary, ) = ctx.saved_tensors
        primary = is_primary.view((-1, ) + (1, ) * (grad.dim() - 1))
        # torch.where gives an exact 0 even for non-finite gradients.
        reversed_grad = torch.where(primary, torch.zeros_like(grad),
                                    grad * (-ctx.lambd))
        return reversed_grad, None, None


def grl(x: Tensor, lambd: float = 1.0) -> Tensor:
    """Gradient reversal layer.

    Args:
        x (Tensor): Any shape.
        lambd (float): Reversal strength :math:`\\lambda`.

    Returns:
        Tensor: ``x`` unchanged (same shape); its gradient becomes
        ``-lambd * dL/dx'``.
    """
    return _GradientReversalFn.apply(x, _check_lambd(lambd))


def _as_mask(is_primary: Union[Tensor, Sequence[bool]], x: Tensor) -> Tensor:
    if not isinstance(is_primary, Tensor):
        is_primary = torch.as_tensor(is_primary)
    if is_primary.dtype != torch.bool:
        if is_primary.is_floating_point() or is_primary.is_complex():
            raise TypeError('is_primary must be a bool (or 0/1 integer) '
                            f'tensor, got dtype {is_primary.dtype}')
        if ((is_primary != 0) & (is_primary != 1)).any():
            raise ValueError('is_primary must hold only 0/1 values')
        is_primary = is_primary.bool()
    if x.dim() == 0:
        raise ValueError('x must have a batch dimension, got a scalar')
    if is_primary.shape != (x.shape[0], ):
        raise ValueError(
            f'is_primary must have shape (B,) = ({x.shape[0]},) for x of '
            f'shape {tuple(x.shape)}, got {tuple(is_primary.shape)}')
    return is_primary.to(x.device)


def cgrl(x: Tensor,
         is_primary: Union[Tensor, Sequence[bool]],
         lambd: float = 1.0) -> Tensor:
    """Conditional gradient reversal layer (AMA-SAM, Eq. 1-2).

    Args:
        x (Tensor): ``B x ...`` features (batch first, any trailing shape).
        is_primary (Tensor | list[bool]): ``(B,)`` bool (or 0/1 integer)
            flags; ``True`` marks samples of the primary data set.
        lambd (float): Reversal strength :math:`\\lambda`.

    Returns:
        Tensor: ``x`` unchanged (``B x ...``). Backward: the gradient of
        sample ``i`` is ``-lambd * dL/dx'_i`` if it is auxiliary and exactly
        ``0`` if it is primary.

    Raises:
        ValueError: ``is_primary`` does not have shape ``(B,)`` or holds
            values other than 0/1.
        TypeError: ``is_primary`` is a floating-point tensor.
    """
    mask = _as_mask(is_primary, x)
    return _ConditionalGradientReversalFn.apply(x, mask, _check_lambd(lambd))


@MODELS.register_module()
class GradientReversal(nn.Module):
    """Module form of :func:`grl`.

    Args:
        lambd (float): Reversal strength; a plain attribute that hooks may
            change between iterations.
    """

    def __init__(self, lambd: float = 1.0) -> None:
        super().__init__()
        self.lambd = _check_lambd(lambd)

    def forward(self, x: Tensor) -> Tensor:
        """Identity; reverses gradients.

        Args:
            x (Tensor): Any shape.

        Returns:
            Tensor: ``x`` (same shape).
        """
        return grl(x, self.lambd)

    def extra_repr(self) -> str:
        return f'lambd={self.lambd}'


@MODELS.register_module()
class ConditionalGradientReversal(nn.Module):
    """Module form of :func:`cgrl` (AMA-SAM's CGRL).

    Args:
        lambd (float): Reversal strength for auxiliary samples; a plain
            attribute that hooks may change between iterations.
    """

    def __init__(self, lambd: float = 1.0) -> None:
        super().__init__()
        self.lambd = _check_lambd(lambd)

    def forward(self, x: Tensor,
                is_primary: Union[Tensor, Sequence[bool]]) -> Tensor:
        """Identity; reversed gradients for auxiliary, none for primary.

        Args:
            x (Tensor): ``B x ...`` features.
            is_primary (Tensor | list[bool]): ``(B,)`` primary flags.

        Returns:
            Tensor: ``x`` (``B x ...``).
        """
        return cgrl(x, is_primary, self.lambd)

    def extra_repr(self) -> str:
        return f'lambd={self.lambd}'
