"""Bottleneck adapter added to the frozen SAM image-encoder blocks.

AMA-SAM (Sec. 3.1, Fig. 1) inserts into every transformer block of the
frozen SAM encoder "a module that consists of two MLP layers and a ReLU
activation function". The width and the scale come from UN-SAM (the source
of AMA-SAM's SPGen): bottleneck 192 for 768-d tokens, scale 0.5.
"""
import torch
from torch import nn

from nucseg.registry import MODELS

__all__ = ['Adapter']


@MODELS.register_module()
class Adapter(nn.Module):
    """``scale * up(ReLU(down(x)))`` on the last dimension.

    The up projection (weight and bias) is zero-initialised, so a fresh
    adapter outputs zeros: adding it to a block (residually, or in
    parallel to the block MLP) leaves the pretrained encoder's output
    unchanged until training moves it. With the up weight at zero only
    ``up`` receives a gradient in the first step; ``down`` starts learning
    from the second step on.

    Args:
        dim (int): Token dimension ``C`` (768 for SAM ViT-B).
        bottleneck (int): Hidden width. Defaults to 192.
        scale (float): Factor applied to the output. Defaults to 1.0.

    Shape:
        - x: ``(..., C)``
        - output: ``(..., C)``
    """

    def __init__(self, dim: int, bottleneck: int = 192,
                 scale: float = 1.0) -> None:
        super().__init__()
        if dim <= 0:
            raise ValueError(f'dim must be positive, got {dim}')
        if bottleneck <= 0:
            raise ValueError(f'bottleneck must be positive, got {bottleneck}')
        self.dim = dim
        self.bottleneck = bottleneck
        self.scale = float(scale)
        self.down = nn.Linear(dim, bottleneck)
        self.act = nn.ReLU(inplace=True)
        self.up = nn.Linear(bottleneck, dim)
        self.init_weights()

    def init_weights(self) -> None:
        """Default init for ``down``; zeros for ``up`` (identity start)."""
        self.down.reset_parameters()
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Adapter output (to be added to the residual stream)."""
        return self.up(self.act(self.down(x))) * self.scale

    def extra_repr(self) -> str:
        return (f'dim={self.dim}, bottleneck={self.bottleneck}, '
                f'scale={self.scale}')
