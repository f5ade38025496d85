"""Frozen SAM ViT image encoder with per-block adapters (AMA-SAM Sec. 3.1).

All pretrained SAM parameters are frozen; an :class:`~nucseg.models.layers.
adapter.Adapter` (Linear -> ReLU -> Linear) is added to every transformer
block and is the only trainable part. The same module (``adapter=None``)
serves as a frozen feature extractor (e.g. for SPROUT).
"""
import copy
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from segment_anything.modeling.image_encoder import (Block, window_partition,
                                                     window_unpartition)
from torch import nn
from torch.utils.checkpoint import checkpoint as cp_checkpoint

from nucseg.models.layers.adapter import Adapter
from nucseg.models.layers.sam_attention import ATTN_IMPLS, set_attn_impl
from nucseg.models.utils.sam import (PATCH_SIZE, SAM_ARCHS,
                                     build_sam_image_encoder, load_sam_part)
from nucseg.registry import MODELS

__all__ = ['AdapterBlock', 'SAMImageEncoder', 'resize_pos_embed']

ADAPTER_PLACEMENTS = ('parallel', 'sequential')
_ADAPTER_DEFAULTS = dict(bottleneck=192, scale=0.5, placement='parallel')


def resize_pos_embed(pos_embed: torch.Tensor,
                     size: Tuple[int, int]) -> torch.Tensor:
    """Bicubically resize SAM's absolute position embedding.

    Args:
        pos_embed (Tensor): ``(1, h, w, C)``.
        size (tuple[int, int]): Target token grid ``(H, W)``.

    Returns:
        Tensor: ``(1, H, W, C)``; ``pos_embed`` itself when the size
        already matches.
    """
    if tuple(pos_embed.shape[1:3]) == tuple(size):
        return pos_embed
    resized = F.interpolate(
        pos_embed.permute(0, 3, 1, 2),
        size=tuple(size),
        mode='bicubic',
        align_corners=False)
    return resized.permute(0, 2, 3, 1)


class AdapterBlock(Block):
    """A ``segment_anything`` ViT block with an optional adapter.

    Holds the original block's ``norm1``, ``attn``, ``norm2`` and ``mlp``
    under the same names (so checkpoint keys are unchanged) plus
    ``adapter``:

    * ``'parallel'`` (UN-SAM): ``x = x + mlp(norm2(x)) +
      adapter(norm2(x))``;
    * ``'sequential'``: the block's output ``y`` becomes
      ``y + adapter(y)``.

    The adapter carries its own ``scale``. Without an adapter the forward
    equals ``Block.forward``.

    Shape:
        - x: ``(B, H, W, C)`` token grid
        - output: ``(B, H, W, C)``
    """

    @classmethod
    def from_block(cls, block: Block, adapter: Optional[Adapter] = None,
                   placement: str = 'parallel') -> 'AdapterBlock':
        """Wrap ``block``'s modules (shared, not copied)."""
        if placement not in ADAPTER_PLACEMENTS:
            raise ValueError(f'adapter placement must be one of '
                             f'{ADAPTER_PLACEMENTS}, got {placement!r}')
        new = cls.__new__(cls)
        nn.Module.__init__(new)
        new.norm1 = block.norm1
        new.attn = block.attn
        new.norm2 = block.norm2
        new.mlp = block.mlp
        new.window_size = block.window_size
        new.adapter = adapter
        new.placement = placement
        new.train(block.training)
        return new

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        x = self.norm1(x)
        if self.window_size > 0:
            h, w = x.shape[1], x.shape[2]
            x, pad_hw = window_partition(x, self.window_size)
        x = self.attn(x)
        if self.window_size > 0:
            x = window_unpartition(x, self.window_size, pad_hw, (h, w))
        x = shortcut + x
        xn = self.norm2(x)
        out = x + self.mlp(xn)
        if self.adapter is not None:
            if self.placement == 'parallel':
                out = out + self.adapter(xn)
            else:
                out = out + self.adapter(out)
        return out


@MODELS.register_module()
class SAMImageEncoder(BaseModule):
    """SAM's ViT image encoder, frozen, with adapters and SDPA attention.

    The ``segment_anything`` ``ImageEncoderViT`` is kept as
    ``self.image_encoder`` with its original parameter names (adapters
    appear as ``image_encoder.blocks.<i>.adapter.*``), so the official
    full-SAM checkpoints load with prefix ``'image_encoder.'`` and a
    nucseg state dict maps back to SAM's names by stripping the prefix of
    this module.

    Inputs whose side differs from ``image_size`` (multiples of 16) are
    accepted: the absolute position embedding is resized bicubically to
    the token grid (``align_corners=False``) and the relative position
    tables of the global-attention blocks are resized linearly by
    ``get_rel_pos``, as in ``segment_anything``; windowed blocks pad the
    grid to whole windows. Features for sizes far from the pretraining
    size are therefore only an approximation of SAM's.

    Args:
        arch (str): ``'vit_b'``, ``'vit_l'``, ``'vit_h'`` or ``'tiny'``
            (random weights only; tests and CPU demos).
        image_size (int): Pretraining input side; sets the shapes of the
            position embeddings (1024 for the official weights).
        checkpoint (str, optional): Official full-SAM state dict (e.g.
            ``sam_vit_b_01ec64.pth``). Its ``image_encoder.`` part is
            loaded with ``weights_only=True``; any missing key other than
            adapter weights, unexpected key or shape mismatch raises
            :class:`~nucseg.models.utils.sam.SamCheckpointError` naming
            the file.
        frozen (bool): Freeze every SAM parameter (only adapters train)
            and keep the frozen modules in eval mode. Defaults to True.
        adapter (dict, optional): ``bottleneck`` (192), ``scale`` (0.5)
            and ``placement`` (``'parallel'`` as in UN-SAM, or
            ``'sequential'``); missing keys take these defaults. ``None``
            builds no adapters.
        adapter_blocks (Sequence[int], optional): Indices of the blocks
            that get an adapter; ``None`` means all blocks.
        attn_impl (str): ``'sdpa'`` (relative position bias as an additive
            SDPA mask), ``'sdpa_fold'`` (bias folded into ``q``/``k``; no
            ``N x N`` tensors in training) or ``'native'``
            (``segment_anything``'s attention). All give the same output
            up to float rounding.
        with_cp (bool): Gradient-checkpoint every block during training
            (same gradients, less memory, one extra block forward).
        init_cfg (dict, optional): mmengine init config.

    Shape:
        - x: ``(B, 3, H, W)`` normalised image, ``H, W`` multiples of 16
        - output: tuple with one ``(B, 256, H / 16, W / 16)`` tensor
    """

    def __init__(self,
                 arch: str = 'vit_b',
                 image_size: int = 1024,
                 checkpoint: Optional[str] = None,
                 frozen: bool = True,
                 adapter: Optional[dict] = _ADAPTER_DEFAULTS,
                 adapter_blocks: Optional[Sequence[int]] = None,
                 attn_impl: str = 'sdpa',
                 with_cp: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if arch not in SAM_ARCHS:
            raise KeyError(f'unknown SAM arch {arch!r}; one of '
                           f'{sorted(SAM_ARCHS)}')
        if image_size <= 0 or image_size % PATCH_SIZE:
            raise ValueError(f'image_size must be a positive multiple of '
                             f'{PATCH_SIZE}, got {image_size}')
        if attn_impl not in ATTN_IMPLS:
            raise ValueError(f'attn_impl must be one of {ATTN_IMPLS}, '
                             f'got {attn_impl!r}')
        self.arch = arch
        self.image_size = image_size
        self.checkpoint = checkpoint
        self.frozen = frozen
        self.attn_impl = attn_impl
        self.with_cp = with_cp

        adapter_cfg = self._adapter_cfg(adapter)
        depth = SAM_ARCHS[arch]['depth']
        self.adapter_blocks = self._adapter_indices(adapter_blocks, depth,
                                                    adapter_cfg)
        if checkpoint is None:
            self.image_encoder = self._build_encoder(adapter_cfg)
        else:
            # Skip the random init of weights the checkpoint overwrites:
            # build on 'meta', allocate, load (strict: every SAM tensor
            # must come from the file), then initialise the adapters.
            with torch.device('meta'):
                encoder = self._build_encoder(adapter_cfg)
            self.image_encoder = encoder.to_empty(device='cpu')
            self.load_checkpoint(checkpoint)
            for a in self.adapters:
                a.init_weights()
        if frozen:
            self._freeze()

    def _build_encoder(self, adapter_cfg: Optional[dict]) -> nn.Module:
        """``ImageEncoderViT`` with adapter blocks and ``attn_impl``."""
        encoder = build_sam_image_encoder(self.arch, self.image_size)
        dim = SAM_ARCHS[self.arch]['embed_dim']
        placement = (adapter_cfg or _ADAPTER_DEFAULTS)['placement']
        for i, blk in enumerate(encoder.blocks):
            ada = None
            if i in self.adapter_blocks:
                ada = Adapter(dim, adapter_cfg['bottleneck'],
                              adapter_cfg['scale'])
            encoder.blocks[i] = AdapterBlock.from_block(blk, ada, placement)
        set_attn_impl(encoder, self.attn_impl)
        return encoder

    @staticmethod
    def _adapter_cfg(adapter: Optional[dict]) -> Optional[dict]:
        if adapter is None:
            return None
        unknown = set(adapter) - set(_ADAPTER_DEFAULTS)
        if unknown:
            raise ValueError(f'unknown adapter keys {sorted(unknown)}; '
                             f'allowed: {sorted(_ADAPTER_DEFAULTS)}')
        cfg = copy.deepcopy(_ADAPTER_DEFAULTS)
        cfg.update(adapter)
        if cfg['placement'] not in ADAPTER_PLACEMENTS:
            raise ValueError(f'adapter placement must be one of '
                             f'{ADAPTER_PLACEMENTS}, got '
                             f'{cfg["placement"]!r}')
        return cfg

    @staticmethod
    def _adapter_indices(blocks: Optional[Sequence[int]], depth: int,
                         cfg: Optional[dict]) -> Tuple[int, ...]:
        if cfg is None:
            return ()
        if blocks is None:
            return tuple(range(depth))
        idx = tuple(sorted({int(i) for i in blocks}))
        bad = [i for i in idx if not 0 <= i < depth]
        if bad:
            raise ValueError(f'adapter_blocks {bad} out of range for '
                             f'{depth} blocks')
        return idx

    @property
    def adapters(self) -> List[Adapter]:
        """The adapter modules, in block order."""
        return [
            m for m in self.image_encoder.modules() if isinstance(m, Adapter)
        ]

    def load_checkpoint(self, filename: str) -> None:
        """Load the ``image_encoder.`` part of a full-SAM checkpoint."""
        load_sam_part(
            self.image_encoder,
            filename,
            prefix='image_encoder.',
            strict=True,
            ignore_missing=('adapter', ))

    def _freeze(self) -> None:
        adapter_params = {
            id(p)
            for a in self.adapters for p in a.parameters()
        }
        for p in self.image_encoder.parameters():
            p.requires_grad = id(p) in adapter_params

    def init_weights(self) -> None:
        """mmengine init; then restore the SAM weights and zero adapters.

        A parent's ``init_cfg`` (e.g. Kaiming on every ``Linear``) is
        applied before this runs; reloading ``checkpoint`` and resetting
        the adapters undoes its effect on this backbone.
        """
        if self.is_init:
            return
        super().init_weights()
        if self.checkpoint is not None:
            self.load_checkpoint(self.checkpoint)
        for a in self.adapters:
            a.init_weights()

    def train(self, mode: bool = True) -> 'SAMImageEncoder':
        """Set the mode; frozen SAM modules stay in eval mode."""
        super().train(mode)
        if self.frozen:
            self.image_encoder.eval()
            for a in self.adapters:
                a.train(mode)
        return self

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor]:
        """Encode a batch of normalised images.

        Args:
            x (Tensor): ``(B, 3, H, W)``, ``H`` and ``W`` multiples of 16.

        Returns:
            tuple[Tensor]: The neck output ``(B, 256, H / 16, W / 16)``.
        """
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f'x must be Bx3xHxW, got {tuple(x.shape)}')
        if x.shape[2] % PATCH_SIZE or x.shape[3] % PATCH_SIZE:
            raise ValueError(f'x height and width must be multiples of '
                             f'{PATCH_SIZE}, got {tuple(x.shape[2:])}')
        enc = self.image_encoder
        tokens = enc.patch_embed(x)  # (B, H/16, W/16, C)
        if enc.pos_embed is not None:
            tokens = tokens + resize_pos_embed(enc.pos_embed,
                                               tokens.shape[1:3])
        use_cp = self.with_cp and self.training and torch.is_grad_enabled()
        for blk in enc.blocks:
            if use_cp:
                tokens = cp_checkpoint(blk, tokens, use_reentrant=False)
            else:
                tokens = blk(tokens)
        return (enc.neck(tokens.permute(0, 3, 1, 2)), )
