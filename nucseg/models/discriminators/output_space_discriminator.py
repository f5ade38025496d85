"""Output-space discriminator (AdaptSegNet's FCDiscriminator)."""
from typing import Optional

from mmengine.model import BaseModule
from torch import Tensor, nn

from nucseg.registry import MODELS

__all__ = ['OutputSpaceDiscriminator']


@MODELS.register_module()
class OutputSpaceDiscriminator(BaseModule):
    """Fully convolutional domain discriminator on segmentation outputs.

    AdaptSegNet's ``FCDiscriminator`` (Tsai et al., CVPR 2018), which
    CellSegUDA and the self-ensembling UDA method (Eq. 6-7) put on the
    segmenter's probability map: ``num_convs`` 4x4 stride-2 convolutions
    with ``base_channels * 2**i`` channels (64, 128, 256, 512), each
    followed by LeakyReLU(0.2), then a 4x4 stride-2 classifier to one
    channel. No normalisation layers. A ``B x 1 x H x W`` map gives
    ``B x 1 x H/32 x W/32`` logits ("from the source domain" when
    positive in nucseg's use); inputs must be at least 32 px.

    It differs from :class:`PatchDiscriminator` (CycleGAN's PatchGAN:
    instance norm, a stride-1 tail, 70 px receptive field), so it is a
    separate module.

    Args:
        in_channels (int): Channels of the segmentation output (1 for a
            sigmoid segmenter).
        base_channels (int): Channels of the first layer (``ndf``, 64).
        num_convs (int): Stride-2 feature convolutions before the
            classifier (4).
        negative_slope (float): LeakyReLU slope (0.2).
        init_cfg (dict, optional): mmengine init config (default: PyTorch's
            initialisation, as the reference code).
    """

    def __init__(self,
                 in_channels: int = 1,
                 base_channels: int = 64,
                 num_convs: int = 4,
                 negative_slope: float = 0.2,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        for name, value in (('in_channels', in_channels),
                            ('base_channels', base_channels),
                            ('num_convs', num_convs)):
            if isinstance(value, bool) or int(value) != value or value < 1:
                raise ValueError(f'OutputSpaceDiscriminator.{name} must be '
                                 f'a positive integer, got {value!r}')
        layers = []
        channels = in_channels
        for i in range(num_convs):
            out = base_channels * 2**i
            layers += [
                nn.Conv2d(channels, out, 4, stride=2, padding=1),
                nn.LeakyReLU(negative_slope)
            ]
            channels = out
        layers.append(nn.Conv2d(channels, 1, 4, stride=2, padding=1))
        self.layers = nn.Sequential(*layers)
        self.in_channels = int(in_channels)
        #: Total down-sampling factor of the output map.
        self.stride = 2**(num_convs + 1)

    def forward(self, x: Tensor) -> Tensor:
        """Domain logits per output patch.

        Args:
            x (Tensor): ``B x in_channels x H x W`` segmentation
                probabilities, ``H, W >= stride`` (32 by default).

        Returns:
            Tensor: ``B x 1 x H/stride x W/stride`` logits.

        Raises:
            ValueError: ``x`` has the wrong shape or is smaller than the
                discriminator's stride.
        """
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f'OutputSpaceDiscriminator expects B x '
                             f'{self.in_channels} x H x W, got '
                             f'{tuple(x.shape)}')
        if min(x.shape[-2:]) < self.stride:
            raise ValueError(
                f'OutputSpaceDiscriminator needs inputs of at least '
                f'{self.stride} x {self.stride} px, got '
                f'{tuple(x.shape[-2:])}; use larger crops or fewer convs')
        return self.layers(x)
