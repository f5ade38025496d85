"""PDAM's semantic-level domain discriminator (CyC-PDAM, Table 2)."""
from typing import Optional, Sequence

from mmengine.model import BaseModule
from torch import Tensor, nn

from nucseg.registry import MODELS
from .image_level_discriminator import kaiming_uniform_init

__all__ = ['PDAMSemanticDiscriminator']


class _ResBlock(nn.Module):
    """``ReLU(x + conv3x3(ReLU(conv3x3(x))))`` (Fig. 3's R_i1, R_i2)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(x + self.conv2(self.relu(self.conv1(x))))


@MODELS.register_module()
class PDAMSemanticDiscriminator(BaseModule):
    """Patch discriminator on the entropy map of the semantic branch.

    Table 2: four stride-2 convs (7x7, 5x5, 5x5, 5x5) to 64/128/256/512
    channels, each followed by ReLU and a residual block, then a 1x1 conv
    to 2 channels: a ``2 x 256 x 256`` entropy map gives ``2 x 16 x 16``
    patch logits. Put a gradient reversal in front of it.

    Args:
        in_channels (int): Channels of the entropy map (2 classes).
        channels (Sequence[int]): Widths of the four stages.
        kernel_sizes (Sequence[int]): Kernels of the stride-2 convs.
        num_classes (int): Output channels (2 domains).
        init_cfg (dict, optional): mmengine init config; by default
            Kaiming-uniform (a=1) as the authors.
    """

    def __init__(self,
                 in_channels: int = 2,
                 channels: Sequence[int] = (64, 128, 256, 512),
                 kernel_sizes: Sequence[int] = (7, 5, 5, 5),
                 num_classes: int = 2,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if len(channels) != len(kernel_sizes) or not channels:
            raise ValueError('channels and kernel_sizes must have the same '
                             f'non-zero length, got {channels} and '
                             f'{kernel_sizes}')
        layers, ch = [], in_channels
        for out, k in zip(channels, kernel_sizes):
            if k % 2 == 0 or k < 1 or out < 1:
                raise ValueError(f'kernel sizes must be odd and channels '
                                 f'positive, got {k}, {out}')
            layers += [
                nn.Conv2d(ch, out, k, stride=2, padding=k // 2),
                nn.ReLU(),
                _ResBlock(out)
            ]
            ch = out
        layers.append(nn.Conv2d(ch, num_classes, 1))
        self.layers = nn.Sequential(*layers)
        self.in_channels = in_channels
        if init_cfg is None:
            kaiming_uniform_init(self)

    def forward(self, x: Tensor) -> Tensor:
        """Domain logits.

        Args:
            x (Tensor): ``B x in_channels x H x W`` entropy map.

        Returns:
            Tensor: ``B x num_classes x H/16 x W/16`` logits.
        """
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f'expected B x {self.in_channels} x H x W, got '
                             f'{tuple(x.shape)}')
        return self.layers(x)
