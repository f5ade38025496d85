"""Binary Dice + focal loss (UN-SAM's fine mask loss, used by AMA-SAM)."""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nucseg.registry import MODELS

__all__ = ['DiceFocalLoss']

FOCAL_MODES = ('batch', 'pixel')


@MODELS.register_module()
class DiceFocalLoss(nn.Module):
    """``dice_weight * L_dice + focal_weight * L_focal`` on binary logits.

    UN-SAM's ``BinaryMaskLoss(0.8)`` (``loss.py`` of its official code),
    which AMA-SAM takes as :math:`L_{fine}`. With ``p = sigmoid(logit)``,
    target ``t`` and the valid-pixel mask ``m`` (``target != ignore_index``),
    sums running over the whole batch:

    * ``L_dice = 1 - (2 sum(p t m) + s) / (sum(p m) + sum(t m) + s)``
      (one soft Dice over the batch, smoothing ``s = 1``);
    * ``focal_mode='batch'`` (UN-SAM's form): ``BCE`` is the mean binary
      cross-entropy over the valid pixels and
      ``L_focal = alpha * (1 - exp(-BCE)) ** gamma * BCE``;
    * ``focal_mode='pixel'``: the per-pixel focal loss of Lin et al.,
      ``mean(alpha_t (1 - p_t) ** gamma BCE_pixel)`` over the valid pixels
      with ``alpha_t = alpha`` for foreground and ``1 - alpha`` for
      background.

    The cross-entropy is computed from logits
    (``binary_cross_entropy_with_logits``) instead of UN-SAM's
    ``binary_cross_entropy`` on probabilities; the values agree wherever
    UN-SAM's ``log`` clamp at -100 is inactive. mmseg's ``DiceLoss`` and
    ``FocalLoss`` are not reused: for a single-channel prediction with a
    ``B x H x W`` target mmseg's ``DiceLoss`` scores the background
    channel, and its ``ignore_index`` drops a class channel, not pixels;
    ``FocalLoss`` fails on the CPU path (target ``(N,)`` vs prediction
    ``(N, 1)``); neither has UN-SAM's batch-level form.

    Args:
        dice_weight (float): Weight of the Dice term (UN-SAM: 0.8).
        focal_weight (float): Weight of the focal term (UN-SAM: 0.2).
        gamma (float): Focusing exponent.
        alpha (float): Focal scale (``'batch'``) or foreground balance
            (``'pixel'``).
        smooth (float): Dice smoothing ``s``.
        focal_mode (str): ``'batch'`` or ``'pixel'``.
        ignore_index (int, optional): Target value of ignored pixels.
        loss_weight (float): Multiplies the whole loss.
        loss_name (str): Key of the loss in the loss dict.
    """

    def __init__(self,
                 dice_weight: float = 0.8,
                 focal_weight: float = 0.2,
                 gamma: float = 2.0,
                 alpha: float = 0.8,
                 smooth: float = 1.0,
                 focal_mode: str = 'batch',
                 ignore_index: Optional[int] = 255,
                 loss_weight: float = 1.0,
                 loss_name: str = 'loss_dice_focal') -> None:
        super().__init__()
        if focal_mode not in FOCAL_MODES:
            raise ValueError(f'focal_mode must be one of {FOCAL_MODES}, got '
                             f'{focal_mode!r}')
        if smooth < 0:
            raise ValueError(f'smooth must be >= 0, got {smooth}')
        self.dice_weight = float(dice_weight)
        self.focal_weight = float(focal_weight)
        self.gamma = float(gamma)
        self.alpha = float(alpha)
        self.smooth = float(smooth)
        self.focal_mode = focal_mode
        self.ignore_index = ignore_index
        self.loss_weight = float(loss_weight)
        self._loss_name = loss_name

    def _prepare(self, pred: Tensor, target: Tensor, ignore_index):
        if pred.dim() != 4 or pred.shape[1] != 1:
            raise ValueError(f'pred must be B x 1 x H x W logits, got '
                             f'{tuple(pred.shape)}')
        if target.dim() == 4 and target.shape[1] == 1:
            target = target[:, 0]
        if target.shape != (pred.shape[0], ) + pred.shape[2:]:
            raise ValueError(
                f'target must be B x H x W or B x 1 x H x W matching pred '
                f'{tuple(pred.shape)}, got {tuple(target.shape)}')
        pred = pred[:, 0]
        if ignore_index is not None:
            valid = target != ignore_index
        else:
            valid = torch.ones_like(target, dtype=torch.bool)
        if ((target[valid] != 0) & (target[valid] != 1)).any():
            raise ValueError('target must hold only 0, 1 (and '
                             f'ignore_index={ignore_index}) values')
        t = torch.where(valid, target, torch.zeros_like(target))
        return pred, t.to(pred.dtype), valid.to(pred.dtype)

    def dice_term(self, prob: Tensor, t: Tensor, m: Tensor) -> Tensor:
        """``1 - soft Dice`` over the batch (all inputs ``B x H x W``)."""
        inter = (prob * t * m).sum()
        denom = (prob * m).sum() + (t * m).sum()
        return 1 - (2 * inter + self.smooth) / (denom + self.smooth).clamp(
            min=torch.finfo(prob.dtype).tiny)

    def focal_term(self, logit: Tensor, t: Tensor, m: Tensor) -> Tensor:
        """Focal term (``'batch'`` or ``'pixel'``, inputs ``B x H x W``)."""
        bce = F.binary_cross_entropy_with_logits(logit, t, reduction='none')
        n_valid = m.sum().clamp(min=1)
        if self.focal_mode == 'batch':
            mean_bce = (bce * m).sum() / n_valid
            return (self.alpha * (1 - torch.exp(-mean_bce))**self.gamma *
                    mean_bce)
        prob = logit.sigmoid()
        one_minus_pt = prob * (1 - t) + (1 - prob) * t
        alpha_t = self.alpha * t + (1 - self.alpha) * (1 - t)
        focal = alpha_t * one_minus_pt**self.gamma * bce
        return (focal * m).sum() / n_valid

    def forward(self,
                pred: Tensor,
                target: Tensor,
                weight: Optional[Tensor] = None,
                ignore_index: Optional[int] = None,
                **kwargs) -> Tensor:
        """Compute the loss.

        Args:
            pred (Tensor): ``B x 1 x H x W`` logits.
            target (Tensor): ``B x H x W`` or ``B x 1 x H x W`` with values
                in {0, 1} (and ``ignore_index``).
            weight (Tensor, optional): Not supported (must be None); kept
                for mmseg's loss signature.
            ignore_index (int, optional): Overrides the constructor's value
                when not None (mmseg decode heads pass theirs).

        Returns:
            Tensor: Scalar loss.
        """
        if weight is not None:
            raise ValueError('DiceFocalLoss does not support per-pixel '
                             '`weight`')
        if ignore_index is None:
            ignore_index = self.ignore_index
        logit, t, m = self._prepare(pred, target, ignore_index)
        loss = pred.new_zeros(())
        if self.dice_weight:
            loss = loss + self.dice_weight * self.dice_term(
                logit.sigmoid(), t, m)
        if self.focal_weight:
            loss = loss + self.focal_weight * self.focal_term(logit, t, m)
        return self.loss_weight * loss

    @property
    def loss_name(self) -> str:
        """Name of the loss item (``loss_`` prefix: part of the total)."""
        return self._loss_name
