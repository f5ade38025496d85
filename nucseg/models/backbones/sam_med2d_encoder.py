"""SAM-Med2D's image encoder (Cheng et al., 2023) on nucseg's SAM encoder.

SAM-Med2D fine-tunes SAM ViT-B at 256 px with an adapter in every block,
added in parallel to the block's MLP (``x + mlp(norm2(x)) +
Adapter(norm2(x))``, the ``'parallel'`` placement of
:class:`~nucseg.models.backbones.AdapterBlock`). Its adapter differs from
nucseg's Linear-ReLU-Linear one: a squeeze-and-excitation channel gate
followed by a stride-2 conv / transposed-conv spatial branch, a residual
connection and a LayerNorm (:class:`SAMMed2DAdapter`).

Checkpoint layout (``sam-med2d_b.pth``): a dict with the model state dict
under ``model``; image-encoder keys ``image_encoder.*`` as in SAM, the
adapters as ``image_encoder.blocks.<i>.Adapter.*``, position embeddings
for a 16 x 16 token grid (256 px). :meth:`SAMMed2DImageEncoder.
load_checkpoint` renames ``.Adapter.`` to nucseg's ``.adapter.`` and
loads strictly through nucseg's SAM checkpoint reader (tensors only,
``weights_only=True``).
"""
from typing import Optional, Tuple

from mmengine.model import BaseModule
from torch import Tensor, nn

from nucseg.models.utils.sam import (SAM_ARCHS, SamCheckpointError,
                                     load_sam_state_dict)
from nucseg.registry import MODELS
from .sam_encoder import SAMImageEncoder

__all__ = ['SAMMed2DAdapter', 'SAMMed2DImageEncoder']


class SAMMed2DAdapter(nn.Module):
    """SAM-Med2D's block adapter on a ``(B, H, W, C)`` token grid.

    ``y = x * sigmoid(W2 relu(W1 avgpool(x)))`` (channel gate, hidden
    width ``C * mlp_ratio``, no biases), ``z = relu(deconv(relu(conv(y))))``
    (3x3 stride-2 conv, 4x4 stride-2 transposed conv, no biases), output
    ``LayerNorm(x + z)``. Parameter names follow SAM-Med2D (``norm``,
    ``channel.0``, ``channel.2``, ``spatial.0``, ``spatial.2``).

    Shape:
        - x: ``(B, H, W, C)`` with even ``H``, ``W``
        - output: ``(B, H, W, C)``
    """

    def __init__(self, dim: int, mlp_ratio: float = 0.25) -> None:
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.norm = nn.LayerNorm(dim)
        self.channel = nn.Sequential(
            nn.Linear(dim, hidden, bias=False), nn.ReLU(),
            nn.Linear(hidden, dim, bias=False), nn.Sigmoid())
        self.spatial = nn.Sequential(
            nn.Conv2d(dim, dim, 3, stride=2, padding=1, bias=False),
            nn.ReLU(),
            nn.ConvTranspose2d(dim, dim, 4, stride=2, padding=1, bias=False),
            nn.ReLU())

    def forward(self, x: Tensor) -> Tensor:
        x = x.permute(0, 3, 1, 2)
        gate = self.channel(x.mean(dim=(2, 3)))
        x = x + self.spatial(x * gate[:, :, None, None])
        return self.norm(x.permute(0, 2, 3, 1))


@MODELS.register_module()
class SAMMed2DImageEncoder(BaseModule):
    """Frozen SAM-Med2D image encoder (ViT-B + its adapters).

    A :class:`SAMImageEncoder` (same attention implementations and input
    handling) whose blocks carry :class:`SAMMed2DAdapter` in parallel
    placement; every parameter, adapters included, is frozen (SAMDA keeps
    the pretrained encoder fixed).

    Args:
        arch (str): ``'vit_b'`` (the released SAM-Med2D) or ``'tiny'``
            (tests).
        image_size (int): Pretraining input side (SAM-Med2D: 256).
        checkpoint (str, optional): ``sam-med2d_b.pth``.
        attn_impl (str): As :class:`SAMImageEncoder`.
        init_cfg (dict, optional): mmengine init config.

    Shape:
        - x: ``(B, 3, H, W)`` normalised image, ``H, W`` multiples of 32
        - output: tuple with one ``(B, 256, H / 16, W / 16)`` tensor
    """

    def __init__(self,
                 arch: str = 'vit_b',
                 image_size: int = 256,
                 checkpoint: Optional[str] = None,
                 attn_impl: str = 'sdpa',
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.encoder = SAMImageEncoder(
            arch=arch, image_size=image_size, checkpoint=None, frozen=True,
            adapter=None, attn_impl=attn_impl)
        dim = SAM_ARCHS[arch]['embed_dim']
        for blk in self.encoder.image_encoder.blocks:
            blk.adapter = SAMMed2DAdapter(dim)
            blk.placement = 'parallel'
        self.checkpoint = checkpoint
        if checkpoint is not None:
            self.load_checkpoint(checkpoint)
        for p in self.parameters():
            p.requires_grad = False

    def load_checkpoint(self, filename: str) -> None:
        """Load the ``image_encoder.`` part of a SAM-Med2D checkpoint."""
        state = load_sam_state_dict(filename, prefix='image_encoder.')
        state = {k.replace('.Adapter.', '.adapter.'): v
                 for k, v in state.items()}
        target = self.encoder.image_encoder
        own = target.state_dict()
        missing = sorted(set(own) - set(state))
        unexpected = sorted(set(state) - set(own))
        bad = [f'{k}: checkpoint {tuple(state[k].shape)} vs model '
               f'{tuple(own[k].shape)}' for k in set(own) & set(state)
               if own[k].shape != state[k].shape]
        if missing or unexpected or bad:
            raise SamCheckpointError(
                f'{filename} is not a SAM-Med2D image encoder of this '
                f'shape (image_size={self.encoder.image_size}): missing '
                f'{missing[:5]}, unexpected {unexpected[:5]}, shape '
                f'mismatches {bad[:3]}')
        target.load_state_dict(state, strict=True)

    def init_weights(self) -> None:
        """mmengine init, then restore the checkpoint (if any)."""
        super().init_weights()
        if self.checkpoint is not None:
            self.load_checkpoint(self.checkpoint)

    def train(self, mode: bool = True) -> 'SAMMed2DImageEncoder':
        """Frozen: always in eval mode."""
        super().train(mode)
        self.encoder.eval()
        return self

    def forward(self, x: Tensor) -> Tuple[Tensor]:
        """SAM-Med2D embedding of a normalised ``(B, 3, H, W)`` batch."""
        return self.encoder(x)
