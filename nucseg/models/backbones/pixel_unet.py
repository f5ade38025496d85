"""Image-to-image U-Net: mmseg's UNet backbone plus a 1x1 output conv."""
from typing import Optional

import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor, nn

from nucseg.registry import MODELS

__all__ = ['PixelUNet']


@MODELS.register_module()
class PixelUNet(BaseModule):
    """A U-Net mapping ``B x C_in x H x W`` to ``B x C_out x H x W``.

    The U-Net is mmseg's ``UNet`` backbone (the one the nucseg baseline
    uses, ``configs/_base_/models/unet_contour.py``): its full-resolution
    decoder output (``base_channels`` channels) goes through a 1x1
    convolution to ``out_channels`` (logits or values, no activation).
    The self-ensembling UDA method builds both its segmenter (3 -> 1) and
    its reconstructor (1 -> 3) from it.

    Inputs of any size are accepted: they are zero-padded at the bottom and
    right to a multiple of :attr:`size_divisor` (2 per down-sampling stage
    of the backbone) and the output is cropped back.

    Args:
        backbone (dict): Config of the U-Net backbone (``type='UNet'``);
            its ``in_channels`` is the input's channel count.
        out_channels (int): Output channels.
        init_cfg (dict, optional): mmengine init config.
    """

    def __init__(self,
                 backbone: dict,
                 out_channels: int,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if isinstance(out_channels, bool) or int(out_channels) < 1:
            raise ValueError(f'PixelUNet.out_channels must be >= 1, got '
                             f'{out_channels!r}')
        self.backbone = MODELS.build(backbone)
        channels = getattr(self.backbone, 'base_channels', None)
        if channels is None:
            raise ValueError(
                f'PixelUNet.backbone must be a U-Net with base_channels '
                f'(mmseg UNet), got {type(self.backbone).__name__}')
        self.out_conv = nn.Conv2d(channels, int(out_channels), 1)
        # mmseg's UNet does not keep its input channels; its default is 3.
        self.in_channels = int(backbone.get('in_channels', 3))
        self.out_channels = int(out_channels)

    @property
    def size_divisor(self) -> int:
        """Input sides are padded to a multiple of this."""
        from nucseg.models.segmentors.nuclei_encoder_decoder import \
            downsample_rate
        return downsample_rate(self.backbone)

    def forward(self, x: Tensor) -> Tensor:
        """Map ``x`` to the output channels at the same size.

        Args:
            x (Tensor): ``B x C_in x H x W``.

        Returns:
            Tensor: ``B x out_channels x H x W``.

        Raises:
            ValueError: ``x`` is not ``B x C_in x H x W``.
        """
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f'PixelUNet expects B x {self.in_channels} x H '
                             f'x W, got {tuple(x.shape)}')
        h, w = x.shape[-2:]
        d = self.size_divisor
        pad_h, pad_w = (-h) % d, (-w) % d
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h))
        out = self.out_conv(self.backbone(x)[-1])
        return out[..., :h, :w]
