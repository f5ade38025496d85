"""Image-level domain discriminator on encoder feature maps (AMA-SAM)."""
from typing import Optional

from mmengine.model import BaseModule
from torch import Tensor, nn

from nucseg.registry import MODELS

__all__ = ['DomainDiscriminator']


@MODELS.register_module()
class DomainDiscriminator(BaseModule):
    """Predicts whether a feature map comes from the primary domain.

    AMA-SAM (Sec. 3.2) puts a domain discriminator ``D`` after the CGRL on
    the aligned encoder features and trains it with the weighted BCE of
    Eq. 3, but gives no architecture. Assumed here (a small DANN/PatchGAN
    style image classifier)::

        [Conv3x3(stride 2) -> LeakyReLU(0.2)] x num_convs
        -> global average pool -> Linear(width, 1)

    without normalisation layers: batches mix domains and are small, so
    batch statistics would leak the domain label and be noisy. For the
    ``256 x 64 x 64`` SAM neck the defaults reduce the map to ``8 x 8``
    before pooling (about 1.8 M parameters).

    Args:
        in_channels (int): Channels ``C`` of the input features.
        width (int): Channels of every conv layer.
        num_convs (int): Number of stride-2 conv layers (>= 1).
        negative_slope (float): LeakyReLU slope.
        init_cfg (dict, optional): mmengine initialisation config.
    """

    def __init__(self,
                 in_channels: int = 256,
                 width: int = 256,
                 num_convs: int = 3,
                 negative_slope: float = 0.2,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        for name, value in (('in_channels', in_channels), ('width', width),
                            ('num_convs', num_convs)):
            if int(value) < 1:
                raise ValueError(f'{name} must be >= 1, got {value}')
        layers = []
        channels = in_channels
        for _ in range(num_convs):
            layers += [
                nn.Conv2d(channels, width, 3, stride=2, padding=1),
                nn.LeakyReLU(negative_slope, inplace=True)
            ]
            channels = width
        self.in_channels = in_channels
        self.convs = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(width, 1)

    def forward(self, x: Tensor) -> Tensor:
        """Domain logits.

        Args:
            x (Tensor): ``B x C x h x w`` (aligned) encoder features.

        Returns:
            Tensor: ``(B,)`` logits of "from the primary domain"
            (``sigmoid`` gives :math:`D(X'_i)` of Eq. 3).

        Raises:
            ValueError: ``x`` is not ``B x in_channels x h x w``.
        """
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f'x must be B x {self.in_channels} x h x w, got '
                f'{tuple(x.shape)}')
        return self.fc(self.pool(self.convs(x)).flatten(1)).squeeze(1)
