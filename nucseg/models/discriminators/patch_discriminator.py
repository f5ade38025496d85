"""70x70 PatchGAN discriminator (Isola et al. 2017; CycleGAN's D)."""
from typing import Optional

from mmengine.model import BaseModule
from torch import Tensor, nn

from nucseg.models.translators.resnet_generator import (instance_norm,
                                                        normal_init)
from nucseg.registry import MODELS

__all__ = ['PatchDiscriminator']


@MODELS.register_module()
class PatchDiscriminator(BaseModule):
    """PatchGAN discriminator (``C64-C128-C256-C512``, 4x4 convs).

    With the defaults each output logit sees a 70x70 input patch; a 256 px
    image gives a ``B x 1 x 30 x 30`` map (LSGAN targets per patch).

    Args:
        in_channels (int): Input channels.
        base_channels (int): Channels of the first layer (64).
        num_convs (int): Stride-2 layers after the first (3 for 70x70).
        init_gain (float): Std of the normal weight initialisation.
        init_cfg (dict, optional): mmengine init config.
    """

    def __init__(self,
                 in_channels: int = 3,
                 base_channels: int = 64,
                 num_convs: int = 3,
                 init_gain: float = 0.02,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if num_convs < 1 or base_channels < 1 or in_channels < 1:
            raise ValueError('PatchDiscriminator: in_channels, '
                             'base_channels and num_convs must be >= 1')
        layers = [
            nn.Conv2d(in_channels, base_channels, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2, inplace=True)
        ]
        ch = base_channels
        for n in range(1, num_convs + 1):
            out = base_channels * min(2**n, 8)
            stride = 2 if n < num_convs else 1
            layers += [
                nn.Conv2d(ch, out, 4, stride=stride, padding=1),
                instance_norm(out),
                nn.LeakyReLU(0.2, inplace=True)
            ]
            ch = out
        layers.append(nn.Conv2d(ch, 1, 4, stride=1, padding=1))
        self.model = nn.Sequential(*layers)
        self.in_channels = in_channels
        self.init_gain = init_gain

    def init_weights(self) -> None:
        if self.init_cfg is not None:
            super().init_weights()
        else:
            normal_init(self, self.init_gain)

    def forward(self, x: Tensor) -> Tensor:
        """Patch logits.

        Args:
            x (Tensor): ``B x in_channels x H x W`` images in ``[-1, 1]``.

        Returns:
            Tensor: ``B x 1 x h x w`` real/fake scores (no sigmoid).
        """
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f'PatchDiscriminator expects B x '
                             f'{self.in_channels} x H x W, got '
                             f'{tuple(x.shape)}')
        return self.model(x)
