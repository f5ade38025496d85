"""nnU-Net's Dice + cross-entropy loss, with deep-supervision weighting.

nnU-Net v2 trains with ``DC_and_CE_loss``: a soft Dice over the softmax
probabilities (``MemoryEfficientSoftDiceLoss``: background excluded,
smoothing 1e-5, optionally one Dice over the whole batch) plus the
cross-entropy, weight 1 each; SAMDA steps 1 and 3 use it (Eq. 1). With
deep supervision every decoder output is scored against the target
resized (nearest) to its size, with weights ``1 / 2^i`` for output ``i``
(full resolution first), the lowest resolution weighted 0, normalised to
sum 1 (:func:`deep_supervision_weights`).
"""
from typing import Dict, List, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nucseg.registry import MODELS

__all__ = ['DiceCELoss', 'deep_supervision_weights']


def deep_supervision_weights(num_outputs: int) -> List[float]:
    """nnU-Net's weights of ``num_outputs`` deep-supervision outputs.

    ``w_i = 1 / 2^i``, the last (lowest-resolution) output gets 0 when
    there are several, then normalised to sum 1.
    """
    if num_outputs < 1:
        raise ValueError(f'num_outputs must be >= 1, got {num_outputs}')
    w = [1.0 / 2**i for i in range(num_outputs)]
    if num_outputs > 1:
        w[-1] = 0.0
    total = sum(w)
    return [x / total for x in w]


@MODELS.register_module()
class DiceCELoss(nn.Module):
    """``weight_ce * CE + weight_dice * (1 - soft Dice)`` on softmax logits.

    nnU-Net returns ``CE - Dice``; ``1 - Dice`` here differs by a constant
    (same gradients) and stays non-negative for logging.

    Args:
        weight_ce (float): Weight of the cross-entropy (nnU-Net: 1).
        weight_dice (float): Weight of the Dice term (nnU-Net: 1).
        batch_dice (bool): One Dice per class over the whole batch
            (nnU-Net's 2-D default) instead of per image.
        include_background (bool): Score class 0 in the Dice (nnU-Net:
            no).
        smooth (float): Dice smoothing (nnU-Net: 1e-5).
        ignore_index (int, optional): Target value excluded from both
            terms.

    Shape:
        - pred: ``(B, C, H, W)`` logits, ``C >= 2``
        - target: ``(B, H, W)`` or ``(B, 1, H, W)`` class indices
    """

    def __init__(self,
                 weight_ce: float = 1.0,
                 weight_dice: float = 1.0,
                 batch_dice: bool = True,
                 include_background: bool = False,
                 smooth: float = 1e-5,
                 ignore_index: Optional[int] = 255) -> None:
        super().__init__()
        if weight_ce < 0 or weight_dice < 0 or smooth < 0:
            raise ValueError('DiceCELoss weights and smooth must be >= 0')
        self.weight_ce = float(weight_ce)
        self.weight_dice = float(weight_dice)
        self.batch_dice = bool(batch_dice)
        self.include_background = bool(include_background)
        self.smooth = float(smooth)
        self.ignore_index = ignore_index

    def _check(self, pred: Tensor, target: Tensor) -> Tensor:
        if pred.dim() != 4 or pred.shape[1] < 2:
            raise ValueError('DiceCELoss needs BxCxHxW logits with C >= 2, '
                             f'got {tuple(pred.shape)}')
        if target.dim() == 4 and target.shape[1] == 1:
            target = target[:, 0]
        if target.shape != (pred.shape[0], ) + tuple(pred.shape[2:]):
            raise ValueError(
                f'target must be BxHxW matching logits {tuple(pred.shape)}, '
                f'got {tuple(target.shape)}')
        target = target.long()
        valid = target if self.ignore_index is None else target[
            target != self.ignore_index]
        if valid.numel() and (valid.min() < 0
                              or valid.max() >= pred.shape[1]):
            raise ValueError(f'target holds classes outside 0..'
                             f'{pred.shape[1] - 1} (ignore_index='
                             f'{self.ignore_index})')
        return target

    def dice(self, pred: Tensor, target: Tensor) -> Tensor:
        """``1 - mean soft Dice`` over the scored classes."""
        target = self._check(pred, target)
        valid = torch.ones_like(target, dtype=pred.dtype)
        if self.ignore_index is not None:
            valid = (target != self.ignore_index).to(pred.dtype)
            target = torch.where(target == self.ignore_index,
                                 torch.zeros_like(target), target)
        prob = pred.softmax(1) * valid[:, None]
        onehot = F.one_hot(target, pred.shape[1]).permute(0, 3, 1, 2).to(
            pred.dtype) * valid[:, None]
        if not self.include_background:
            prob, onehot = prob[:, 1:], onehot[:, 1:]
        dims = (0, 2, 3) if self.batch_dice else (2, 3)
        tp = (prob * onehot).sum(dims)
        size = prob.sum(dims) + onehot.sum(dims)
        dc = (2 * tp + self.smooth) / (size + self.smooth).clamp(min=1e-8)
        return 1 - dc.mean()

    def ce(self, pred: Tensor, target: Tensor) -> Tensor:
        """Mean cross-entropy over the non-ignored pixels."""
        target = self._check(pred, target)
        ignore = -100 if self.ignore_index is None else self.ignore_index
        if (target != ignore).sum() == 0:
            return pred.sum() * 0
        return F.cross_entropy(pred, target, ignore_index=ignore)

    def forward(self,
                pred: Union[Tensor, Sequence[Tensor]],
                target: Tensor,
                return_terms: bool = False
                ) -> Union[Tensor, Dict[str, Tensor]]:
        """Loss of one output, or deep-supervision-weighted over several.

        Args:
            pred (Tensor | Sequence[Tensor]): Logits, or a list of logits
                from full resolution downwards (deep supervision).
            target (Tensor): Class map at the first output's size; resized
                (nearest) for the others.
            return_terms (bool): Return ``dict(loss_ce=..., loss_dice=...)``
                (each already weighted) instead of their sum.
        """
        preds = [pred] if isinstance(pred, Tensor) else list(pred)
        weights = deep_supervision_weights(len(preds))
        if target.dim() == 4:
            target = target[:, 0]
        total_ce = preds[0].new_zeros(())
        total_dice = preds[0].new_zeros(())
        for w, p in zip(weights, preds):
            t = target
            if p.shape[2:] != target.shape[1:]:
                t = F.interpolate(
                    target[:, None].float(), size=p.shape[2:],
                    mode='nearest')[:, 0].long()
            # Weight-0 outputs stay in the graph (DDP sees every parameter
            # used) but add nothing.
            total_ce = total_ce + w * self.ce(p, t)
            total_dice = total_dice + w * self.dice(p, t)
        terms = dict(
            loss_ce=self.weight_ce * total_ce,
            loss_dice=self.weight_dice * total_dice)
        if return_terms:
            return terms
        return terms['loss_ce'] + terms['loss_dice']
