"""CycleGAN's ResNet generator.

Architectures of Zhu et al. (ICCV 2017, appendix 7.2) as in their
reference implementation (``pytorch-CycleGAN-and-pix2pix``): instance
normalisation without affine parameters, reflection padding, weights drawn
from N(0, 0.02).
"""
from typing import Optional

import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor, nn

from nucseg.registry import MODELS

__all__ = ['ResnetGenerator', 'instance_norm', 'normal_init']


def instance_norm(channels: int) -> nn.Module:
    """InstanceNorm2d without affine parameters or running statistics."""
    return nn.InstanceNorm2d(channels, affine=False,
                             track_running_stats=False)


def normal_init(module: nn.Module, gain: float) -> None:
    """Conv weights ~ N(0, gain), biases 0 (CycleGAN's 'normal' init)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class _ResidualBlock(nn.Module):
    """``x + [pad-conv3x3-IN-ReLU-pad-conv3x3-IN](x)``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.block = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3),
            instance_norm(channels), nn.ReLU(inplace=True),
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3),
            instance_norm(channels))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.block(x)


@MODELS.register_module()
class ResnetGenerator(BaseModule):
    """CycleGAN's ResNet generator (``c7s1-64, d128, d256, R256 x n,
    u128, u64, c7s1-3``, Tanh output).

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        base_channels (int): Channels of the first layer (64).
        num_blocks (int): Residual blocks (9 for 256 px images).
        num_down (int): Stride-2 down/up-sampling stages (2).
        init_gain (float): Std of the normal weight initialisation.
        init_cfg (dict, optional): mmengine init config (e.g.
            ``Pretrained``); replaces the normal initialisation.
    """

    def __init__(self,
                 in_channels: int = 3,
                 out_channels: int = 3,
                 base_channels: int = 64,
                 num_blocks: int = 9,
                 num_down: int = 2,
                 init_gain: float = 0.02,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        for name, value, low in (('in_channels', in_channels, 1),
                                 ('out_channels', out_channels, 1),
                                 ('base_channels', base_channels, 1),
                                 ('num_blocks', num_blocks, 0),
                                 ('num_down', num_down, 0)):
            if int(value) < low:
                raise ValueError(f'ResnetGenerator.{name} must be >= {low},'
                                 f' got {value}')
        layers = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(in_channels, base_channels, 7),
            instance_norm(base_channels),
            nn.ReLU(inplace=True)
        ]
        ch = base_channels
        for _ in range(num_down):
            layers += [
                nn.Conv2d(ch, ch * 2, 3, stride=2, padding=1),
                instance_norm(ch * 2),
                nn.ReLU(inplace=True)
            ]
            ch *= 2
        layers += [_ResidualBlock(ch) for _ in range(num_blocks)]
        for _ in range(num_down):
            layers += [
                nn.ConvTranspose2d(
                    ch, ch // 2, 3, stride=2, padding=1, output_padding=1),
                instance_norm(ch // 2),
                nn.ReLU(inplace=True)
            ]
            ch //= 2
        layers += [
            nn.ReflectionPad2d(3),
            nn.Conv2d(ch, out_channels, 7),
            nn.Tanh()
        ]
        self.model = nn.Sequential(*layers)
        self.in_channels = in_channels
        self.size_divisor = 2**num_down
        self.init_gain = init_gain

    def init_weights(self) -> None:
        if self.init_cfg is not None:
            super().init_weights()
        else:
            normal_init(self, self.init_gain)

    def forward(self, x: Tensor) -> Tensor:
        """Translate images.

        Args:
            x (Tensor): ``B x in_channels x H x W`` in ``[-1, 1]``; ``H``
                and ``W`` need not be multiples of :attr:`size_divisor`
                (the input is reflect-padded and the output cropped).

        Returns:
            Tensor: ``B x out_channels x H x W`` in ``[-1, 1]``.
        """
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f'ResnetGenerator expects B x '
                             f'{self.in_channels} x H x W, got '
                             f'{tuple(x.shape)}')
        h, w = x.shape[-2:]
        d = self.size_divisor
        ph, pw = (-h) % d, (-w) % d
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode='reflect')
        return self.model(x)[..., :h, :w]
