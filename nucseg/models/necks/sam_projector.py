"""SAMDA's embedding projector: three convolutions on SAM's image embedding.

SAMDA (Wang & Xiao, Sec. 2.1) passes the frozen SAM ViT's embedding
through "an embedding projector with three convolutional layers, whose
output feature map will be concatenated with the feature embedding of the
last layer of the UNet Encoder". The paper gives no kernel sizes, widths or
normalisation; the defaults here (recorded in ``configs/samda/README.md``):

* conv 3x3 ``in -> channels`` + activation,
* conv 3x3 ``channels -> channels`` + activation,
* conv 1x1 ``channels -> out_channels`` (linear output),

all with stride 1, LeakyReLU(0.01) as in nnU-Net, and no normalisation by
default: instance normalisation would remove exactly the per-channel
first and second moments that the step-2 style (Gram) loss is meant to
align between domains. Resizing to the bottleneck size is done by the
segmentor, so the perceptual loss sees the projector's full resolution.
"""
from typing import Optional

from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from torch import Tensor, nn

from nucseg.registry import MODELS

__all__ = ['SAMEmbeddingProjector']


@MODELS.register_module()
class SAMEmbeddingProjector(BaseModule):
    """Three-conv projector of SAM's ``B x 256 x h x w`` embedding.

    Args:
        in_channels (int): SAM embedding channels (256 for every SAM).
        channels (int): Hidden width of the first two convs.
        out_channels (int): Channels concatenated to the U-Net bottleneck.
        kernel_size (int): Kernel of the first two convs (odd).
        norm_cfg (dict, optional): mmcv norm config of the first two convs
            (e.g. ``dict(type='IN', affine=True)``); None = no norm.
        act_cfg (dict): mmcv activation config of the first two convs.
        init_cfg (dict, optional): mmengine init config; default Kaiming
            normal for the convs (nnU-Net's He init, ``a = 0.01``).

    Shape:
        - x: ``(B, in_channels, h, w)``
        - output: ``(B, out_channels, h, w)``
    """

    def __init__(self,
                 in_channels: int = 256,
                 channels: int = 256,
                 out_channels: int = 256,
                 kernel_size: int = 3,
                 norm_cfg: Optional[dict] = None,
                 act_cfg: dict = dict(type='LeakyReLU', negative_slope=0.01),
                 init_cfg: Optional[dict] = dict(
                     type='Kaiming', layer='Conv2d', a=0.01,
                     distribution='normal', mode='fan_in',
                     nonlinearity='leaky_relu')) -> None:
        super().__init__(init_cfg=init_cfg)
        for name, value in (('in_channels', in_channels),
                            ('channels', channels),
                            ('out_channels', out_channels)):
            if int(value) < 1:
                raise ValueError(f'SAMEmbeddingProjector: {name} must be '
                                 f'>= 1, got {value}')
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError('SAMEmbeddingProjector: kernel_size must be a '
                             f'positive odd number, got {kernel_size}')
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        pad = kernel_size // 2
        self.convs = nn.Sequential(
            ConvModule(in_channels, channels, kernel_size, padding=pad,
                       norm_cfg=norm_cfg, act_cfg=act_cfg),
            ConvModule(channels, channels, kernel_size, padding=pad,
                       norm_cfg=norm_cfg, act_cfg=act_cfg),
            nn.Conv2d(channels, out_channels, 1))

    def forward(self, x: Tensor) -> Tensor:
        """Project ``x`` (``B x in_channels x h x w``)."""
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f'SAMEmbeddingProjector expects Bx'
                             f'{self.in_channels}xhxw, got {tuple(x.shape)}')
        return self.convs(x)
