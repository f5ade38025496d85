"""SPGen: UN-SAM's self-prompt generator, used by AMA-SAM (Sec. 3.1)."""
from typing import Optional

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from segment_anything.modeling.common import LayerNorm2d
from torch import Tensor, nn

from nucseg.registry import MODELS

__all__ = ['SPGen']


@MODELS.register_module()
class SPGen(BaseModule):
    """Lightweight decoder: encoder neck -> coarse mask -> dense prompt.

    Four branches on the ``C x h x w`` neck (as ``SPGen`` in UN-SAM's
    ``model.py``), each giving one logit channel at its own scale, resized
    to ``4h x 4w`` (bilinear, ``align_corners=True`` as in UN-SAM) and
    summed:

    1. ``MaxPool(2) -> Conv1x1(C, 1)`` at ``h/2`` (x8);
    2. ``Conv1x1(C, 1)`` at ``h`` (x4);
    3. ``ConvT(C, 64, k2, s2) -> Conv1x1(64, 1)`` at ``2h`` (x2);
    4. ``ConvT(C, 64, k2, s2) -> LayerNorm2d -> GELU -> ConvT(64, 16, k2,
       s2) -> Conv1x1(16, 1)`` at ``4h``.

    For the ``256 x 64 x 64`` neck of a 1024 input the coarse logit is
    ``1 x 256 x 256``, the size of SAM's mask-prompt input.

    Args:
        in_channels (int): Neck channels ``C``.
        threshold (float): Probability threshold of the mask prompt.
        ignore_index (int, optional): Label value ignored by :meth:`loss`.
        align_corners (bool): Of the bilinear resizing of branches 1-3.
        init_cfg (dict, optional): mmengine initialisation config.
    """

    def __init__(self,
                 in_channels: int = 256,
                 threshold: float = 0.95,
                 ignore_index: Optional[int] = 255,
                 align_corners: bool = True,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if not 0.0 < threshold < 1.0:
            raise ValueError(f'threshold must be in (0, 1), got {threshold}')
        self.in_channels = in_channels
        self.threshold = float(threshold)
        self.ignore_index = ignore_index
        self.align_corners = align_corners
        self.pool_branch = nn.Sequential(
            nn.MaxPool2d(kernel_size=2, stride=2),
            nn.Conv2d(in_channels, 1, kernel_size=1))
        self.neck_branch = nn.Conv2d(in_channels, 1, kernel_size=1)
        self.up2_branch = nn.Sequential(
            nn.ConvTranspose2d(in_channels, 64, kernel_size=2, stride=2),
            nn.Conv2d(64, 1, kernel_size=1))
        self.up4_branch = nn.Sequential(
            nn.ConvTranspose2d(in_channels, 64, kernel_size=2, stride=2),
            LayerNorm2d(64), nn.GELU(),
            nn.ConvTranspose2d(64, 16, kernel_size=2, stride=2),
            nn.Conv2d(16, 1, kernel_size=1))

    def _resize(self, x: Tensor, size) -> Tensor:
        return F.interpolate(
            x, size=size, mode='bilinear', align_corners=self.align_corners)

    def forward(self, feat: Tensor) -> Tensor:
        """Coarse segmentation logits.

        Args:
            feat (Tensor): ``B x C x h x w`` encoder neck features.

        Returns:
            Tensor: ``B x 1 x 4h x 4w`` logits.

        Raises:
            ValueError: ``feat`` is not ``B x in_channels x h x w``.
        """
        if feat.dim() != 4 or feat.shape[1] != self.in_channels:
            raise ValueError(f'feat must be B x {self.in_channels} x h x w, '
                             f'got {tuple(feat.shape)}')
        size = (4 * feat.shape[2], 4 * feat.shape[3])
        return (self._resize(self.pool_branch(feat), size) +
                self._resize(self.neck_branch(feat), size) +
                self._resize(self.up2_branch(feat), size) +
                self.up4_branch(feat))

    def mask_prompt(self, logit: Tensor) -> Tensor:
        """Dense mask prompt for SAM's prompt encoder.

        SAM's ``PromptEncoder`` takes ``masks`` of shape ``B x 1 x 4h x 4w``
        (``4 x`` its image-embedding size) as float. SAM's own predictor
        feeds low-resolution mask *logits* there; AMA-SAM/UN-SAM feed the
        binarised coarse mask instead, ``1.0`` where
        ``sigmoid(logit) >= threshold`` and ``0.0`` elsewhere, computed
        without gradient (the fine loss does not train SPGen through the
        prompt).

        Args:
            logit (Tensor): ``B x 1 x 4h x 4w`` coarse logits.

        Returns:
            Tensor: ``B x 1 x 4h x 4w`` float {0, 1}, no gradient.
        """
        prob = torch.sigmoid(logit.detach())
        return (prob >= self.threshold).to(logit.dtype)

    def loss(self, logit: Tensor, gt: Tensor) -> Tensor:
        """``L_coarse``: BCE of the coarse logits against the resized label.

        Args:
            logit (Tensor): ``B x 1 x 4h x 4w`` coarse logits.
            gt (Tensor): ``B x H x W`` or ``B x 1 x H x W`` binary label
                (values 0/1, ``ignore_index`` ignored), any size; resized to
                ``4h x 4w`` with ``nearest`` (PyTorch's legacy nearest, as
                UN-SAM's ``F.interpolate(labels, scale_factor=0.25)``).

        Returns:
            Tensor: Scalar mean BCE over the valid pixels.
        """
        if logit.dim() != 4 or logit.shape[1] != 1:
            raise ValueError(f'logit must be B x 1 x h x w, got '
                             f'{tuple(logit.shape)}')
        if gt.dim() == 3:
            gt = gt[:, None]
        if gt.dim() != 4 or gt.shape[1] != 1 or gt.shape[0] != len(logit):
            raise ValueError(f'gt must be B x H x W or B x 1 x H x W with '
                             f'B={len(logit)}, got {tuple(gt.shape)}')
        gt = F.interpolate(gt.float(), size=logit.shape[-2:], mode='nearest')
        if self.ignore_index is not None:
            valid = gt != self.ignore_index
        else:
            valid = torch.ones_like(gt, dtype=torch.bool)
        if ((gt[valid] != 0) & (gt[valid] != 1)).any():
            raise ValueError('gt must hold only 0/1 (and ignore_index) '
                             'values')
        target = torch.where(valid, gt, torch.zeros_like(gt))
        bce = F.binary_cross_entropy_with_logits(
            logit, target.to(logit.dtype), reduction='none')
        m = valid.to(logit.dtype)
        return (bce * m).sum() / m.sum().clamp(min=1)
