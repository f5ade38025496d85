"""Multi-class Tversky loss (Salehi et al., 2017) as a nucseg plugin.

Registered into ``nucseg``'s MODELS registry from outside the package:
a config loads it with ``custom_imports`` and uses it in
``decode_head.loss_decode`` like any built-in loss.
"""
from typing import Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from nucseg.registry import MODELS


@MODELS.register_module()
class MultiClassTverskyLoss(nn.Module):
    """Tversky loss on soft-maxed logits, averaged over chosen classes.

    ``TI_c = TP_c / (TP_c + alpha * FP_c + beta * FN_c)`` and the loss is
    ``1 - mean_c TI_c``. With ``beta > alpha`` missed pixels cost more than
    false alarms, which favours thin structures such as nucleus contours.

    Args:
        alpha (float): Weight of false positives.
        beta (float): Weight of false negatives.
        class_ids (Sequence[int], optional): Classes to average over;
            defaults to all but class 0 (background).
        ignore_index (int): Label value excluded from the loss.
        smooth (float): Added to numerator and denominator.
        loss_weight (float): Multiplier of the loss.
        loss_name (str): Key of the loss in the log; must start with
            ``loss_`` to be back-propagated.
    """

    def __init__(self,
                 alpha: float = 0.3,
                 beta: float = 0.7,
                 class_ids: Optional[Sequence[int]] = None,
                 ignore_index: int = 255,
                 smooth: float = 1.0,
                 loss_weight: float = 1.0,
                 loss_name: str = 'loss_tversky') -> None:
        super().__init__()
        if alpha < 0 or beta < 0:
            raise ValueError('alpha and beta must be non-negative')
        self.alpha, self.beta = alpha, beta
        self.class_ids = None if class_ids is None else list(class_ids)
        self.ignore_index = ignore_index
        self.smooth = smooth
        self.loss_weight = loss_weight
        self._loss_name = loss_name

    def forward(self,
                pred: torch.Tensor,
                target: torch.Tensor,
                weight: Optional[torch.Tensor] = None,
                ignore_index: Optional[int] = None,
                **kwargs) -> torch.Tensor:
        """Compute the loss.

        Args:
            pred (Tensor): ``NxCxHxW`` logits.
            target (Tensor): ``NxHxW`` class indices.

        Returns:
            Tensor: Scalar loss.
        """
        ignore = self.ignore_index if ignore_index is None else ignore_index
        num_classes = pred.shape[1]
        valid = (target != ignore).unsqueeze(1).to(pred.dtype)
        onehot = F.one_hot(
            target.clamp(0, num_classes - 1).long(),
            num_classes).permute(0, 3, 1, 2).to(pred.dtype)
        prob = pred.softmax(1) * valid
        onehot = onehot * valid
        dims = (0, 2, 3)
        tp = (prob * onehot).sum(dims)
        fp = (prob * (1 - onehot)).sum(dims)
        fn = ((1 - prob) * onehot).sum(dims)
        index = (
            self.class_ids if self.class_ids is not None else list(
                range(1, num_classes)))
        ti = (tp + self.smooth) / (
            tp + self.alpha * fp + self.beta * fn + self.smooth)
        return self.loss_weight * (1 - ti[index].mean())

    @property
    def loss_name(self) -> str:
        return self._loss_name
