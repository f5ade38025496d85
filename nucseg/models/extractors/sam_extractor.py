"""SAM's image encoder as a SPROUT feature extractor."""
from typing import Optional

from torch import Tensor

from nucseg.models.backbones.sam_encoder import SAMImageEncoder
from nucseg.models.utils.sam import (PATCH_SIZE, PROMPT_EMBED_DIM,
                                     SAM_PIXEL_MEAN, SAM_PIXEL_STD)
from nucseg.registry import MODELS
from .torchvision_extractor import _FrozenExtractor

__all__ = ['SAMExtractor']


@MODELS.register_module()
class SAMExtractor(_FrozenExtractor):
    """Frozen SAM ViT (no adapters): ``[0, 255]`` RGB -> neck features.

    ``forward(img)`` normalises with SAM's pixel statistics and returns the
    ``B x 256 x H/16 x W/16`` neck output of
    :class:`~nucseg.models.backbones.SAMImageEncoder`. Wrap it in
    :class:`TiledExtractor` with ``input_size=1024`` for SPROUT's 128 px
    tiles (each tile is resized to SAM's input, giving 2 px per cell).

    Args:
        arch (str): ``vit_b``, ``vit_l``, ``vit_h`` or ``tiny``.
        checkpoint (str, optional): Official SAM file (the
            ``image_encoder.*`` part is loaded, ``weights_only``).
        image_size (int): Encoder input side (1024 for official weights).
        attn_impl (str): Attention path, see ``SAMImageEncoder``.
    """

    def __init__(self,
                 arch: str = 'vit_l',
                 checkpoint: Optional[str] = None,
                 image_size: int = 1024,
                 attn_impl: str = 'sdpa',
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(
            mean=[m / 255.0 for m in SAM_PIXEL_MEAN],
            std=[s / 255.0 for s in SAM_PIXEL_STD],
            frozen=True,
            init_cfg=init_cfg)
        self.encoder = SAMImageEncoder(
            arch=arch, image_size=image_size, checkpoint=checkpoint,
            frozen=True, adapter=None, attn_impl=attn_impl)
        # ViT patch 16, neck of 256 channels: no probe pass needed.
        self.requires_grad_(False)
        self.eval()
        self.stride = PATCH_SIZE
        self.out_channels = PROMPT_EMBED_DIM

    def forward(self, img: Tensor) -> Tensor:
        """``B x 3 x H x W`` RGB in [0, 255] -> ``B x 256 x H/16 x W/16``."""
        return self._check_grid(self.encoder(self.normalize(img))[0],
                                'SAMExtractor')
