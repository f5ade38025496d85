"""PDAM's image-level domain discriminator (CyC-PDAM, Table 1)."""
from typing import Optional, Sequence

import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor, nn

from nucseg.registry import MODELS

__all__ = ['PDAMImageDiscriminator', 'kaiming_uniform_init']


def kaiming_uniform_init(module: nn.Module) -> None:
    """Kaiming-uniform weights (a=1) and zero biases for every conv and
    linear layer, as maskrcnn-benchmark's ``conv_with_kaiming_uniform`` /
    ``make_fc`` used by the authors."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_uniform_(m.weight, a=1)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


@MODELS.register_module()
class PDAMImageDiscriminator(BaseModule):
    """Image-level discriminator on FPN features.

    The FPN levels are average-pooled to the size of the coarsest given
    level and summed (the authors pool P2-P4 to P5's size and add P5: 8x8
    for a 256 px input), then (Table 1)::

        conv3x3 256->256, ReLU, conv3x3 256->512, ReLU,
        conv3x3 512->512, ReLU, conv1x1 512->2

    giving per-position 2-way domain logits. Put a gradient reversal in
    front of it (the detector does).

    Args:
        in_channels (int): FPN channels (256).
        channels (Sequence[int]): Widths of the three 3x3 convs.
        num_classes (int): Output channels (2 domains).
        init_cfg (dict, optional): mmengine init config; by default
            Kaiming-uniform (a=1) as the authors.
    """

    def __init__(self,
                 in_channels: int = 256,
                 channels: Sequence[int] = (256, 512, 512),
                 num_classes: int = 2,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if in_channels < 1 or num_classes < 1 or not channels or min(
                channels) < 1:
            raise ValueError('PDAMImageDiscriminator: channels must be '
                             'positive')
        layers, ch = [], in_channels
        for out in channels:
            layers += [nn.Conv2d(ch, out, 3, padding=1), nn.ReLU()]
            ch = out
        layers.append(nn.Conv2d(ch, num_classes, 1))
        self.convs = nn.Sequential(*layers)
        self.in_channels = in_channels
        if init_cfg is None:
            kaiming_uniform_init(self)

    @staticmethod
    def pool_and_sum(feats: Sequence[Tensor]) -> Tensor:
        """Average-pool every level to the last (coarsest) one and sum.

        Args:
            feats (Sequence[Tensor]): ``B x C x h_l x w_l`` maps, finest
                first (P2..P5).

        Returns:
            Tensor: ``B x C x h_L x w_L``.
        """
        if not feats:
            raise ValueError('no feature levels given')
        size = feats[-1].shape[-2:]
        out = feats[-1]
        for f in feats[:-1]:
            out = out + F.adaptive_avg_pool2d(f, size)
        return out

    def forward(self, feats) -> Tensor:
        """Domain logits.

        Args:
            feats (Tensor | Sequence[Tensor]): ``B x C x h x w`` (already
                pooled and summed) or the FPN levels (pooled and summed
                here).

        Returns:
            Tensor: ``B x num_classes x h x w`` logits (8 x 8 at 256 px).
        """
        x = feats if isinstance(feats, Tensor) else self.pool_and_sum(feats)
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f'expected B x {self.in_channels} x h x w '
                             f'features, got {tuple(x.shape)}')
        return self.convs(x)
