"""PDAM's instance-level domain discriminator (CyC-PDAM, Sec. 3.1)."""
from typing import Optional, Sequence

import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor, nn

from nucseg.registry import MODELS
from .image_level_discriminator import kaiming_uniform_init

__all__ = ['PDAMInstanceDiscriminator']


@MODELS.register_module()
class PDAMInstanceDiscriminator(BaseModule):
    """Per-RoI discriminator on fused box and mask features.

    The mask branch's ``256 x 14 x 14`` RoI features are average-pooled
    to ``256 x 2 x 2``, flattened to 1024 values and summed with the
    1024-d box-head feature; three FC layers (1024 -> 1024 -> 256 -> 1,
    ReLU and dropout 0.5 between) give one logit per RoI (sigmoid = the
    probability of the source domain). Put a gradient reversal in front
    of the fused feature.

    Args:
        in_channels (int): Length of the fused feature (1024).
        hidden (Sequence[int]): Hidden FC widths.
        dropout (float): Dropout probability after each hidden layer.
        mask_pool (int): Side of the mask-feature pooling (2).
        init_cfg (dict, optional): mmengine init config; by default
            Kaiming-uniform (a=1) as the authors.
    """

    def __init__(self,
                 in_channels: int = 1024,
                 hidden: Sequence[int] = (1024, 256),
                 dropout: float = 0.5,
                 mask_pool: int = 2,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f'dropout must be in [0, 1), got {dropout}')
        layers, ch = [], in_channels
        for out in hidden:
            layers += [nn.Linear(ch, out), nn.ReLU(), nn.Dropout(dropout)]
            ch = out
        layers.append(nn.Linear(ch, 1))
        self.fcs = nn.Sequential(*layers)
        self.in_channels = in_channels
        self.mask_pool = mask_pool
        if init_cfg is None:
            kaiming_uniform_init(self)

    def fuse(self, box_feats: Tensor, mask_feats: Tensor) -> Tensor:
        """``flatten(avgpool_2x2(mask_feats)) + box_feats``.

        Args:
            box_feats (Tensor): ``N x in_channels`` box-head features.
            mask_feats (Tensor): ``N x C x h x w`` mask-head features with
                ``C * mask_pool**2 == in_channels``.

        Returns:
            Tensor: ``N x in_channels``.
        """
        pooled = F.adaptive_avg_pool2d(mask_feats,
                                       self.mask_pool).flatten(1)
        if pooled.shape != box_feats.shape or \
                box_feats.shape[-1] != self.in_channels:
            raise ValueError(
                f'pooled mask features {tuple(pooled.shape)} and box '
                f'features {tuple(box_feats.shape)} must both be N x '
                f'{self.in_channels}')
        return pooled + box_feats

    def forward(self, x: Tensor) -> Tensor:
        """Per-RoI domain logits.

        Args:
            x (Tensor): ``N x in_channels`` fused features.

        Returns:
            Tensor: ``(N,)`` logits of "from the source domain".
        """
        if x.dim() != 2 or x.shape[1] != self.in_channels:
            raise ValueError(f'expected N x {self.in_channels}, got '
                             f'{tuple(x.shape)}')
        return self.fcs(x).squeeze(1)
