"""Decoders on a frozen SAM prompt encoder + mask decoder (AMA-SAM).

* :class:`SAMMaskDecoderHead`: SAM's own decoder, single-mask output at
  ``4h x 4w`` (the "SAM Decoder" row of AMA-SAM's Table 3);
* :class:`HRDecoderHead`: AMA-SAM's High-Resolution Decoder (Sec. 3.3,
  Eq. 4-5), output at ``16h x 16w`` (the input resolution).

Both take the image embedding ``B x 256 x h x w`` (``h = H / 16``), the
encoder features (HR-Decoder only) and an optional dense mask prompt
``B x 1 x 4h x 4w`` (e.g. :meth:`SPGen.mask_prompt`), and return logits.
``out_stride`` is the number of input pixels per output pixel (4 or 1), so
a segmentor resizes the logits to the input size when ``out_stride > 1``.

The SAM parts are built for square inputs of ``image_size`` and loaded
from an official full-SAM checkpoint (keys ``prompt_encoder.*``,
``mask_decoder.*``); they are frozen (``requires_grad=False``) but
differentiable, so gradients reach the image embedding and the slice tokens
through SAM's two-way transformer. SAM's decoder has no dropout or batch
norm, so train/eval mode does not change it.
"""
import math
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from segment_anything.modeling.common import LayerNorm2d
from segment_anything.modeling.mask_decoder import MLP
from torch import Tensor, nn

from nucseg.models.utils.sam import (PROMPT_EMBED_DIM, build_sam_mask_decoder,
                                     build_sam_prompt_encoder, load_sam_part)
from nucseg.registry import MODELS

__all__ = [
    'feature_unensemble', 'pixel_ensemble', 'BaseSAMDecoderHead',
    'SAMMaskDecoderHead', 'HRDecoderHead'
]


def feature_unensemble(feat: Tensor, scale: int) -> Tensor:
    """Feature Unensemble Module: split a map into ``scale**2`` slices.

    Slice ``i = dy * scale + dx`` holds the sub-pixel positions
    ``(scale * y + dy, scale * x + dx)`` (pixel unshuffle), so
    :func:`pixel_ensemble` is its exact inverse.

    Args:
        feat (Tensor): ``B x C x (scale*H) x (scale*W)``.
        scale (int): Sub-sampling factor.

    Returns:
        Tensor: ``B x scale**2 x C x H x W``.
    """
    b, c = feat.shape[:2]
    x = F.pixel_unshuffle(feat, scale)  # B x (C * s^2) x H x W, c-major
    return x.view(b, c, scale * scale, *x.shape[-2:]).transpose(1, 2)


def pixel_ensemble(slices: Tensor, scale: int) -> Tensor:
    """Pixel Ensemble Module: interleave ``scale**2`` slices into one map.

    Args:
        slices (Tensor): ``B x scale**2 x H x W`` (one channel per slice) or
            ``B x scale**2 x C x H x W``.
        scale (int): Up-sampling factor.

    Returns:
        Tensor: ``B x 1 x (scale*H) x (scale*W)`` or
        ``B x C x (scale*H) x (scale*W)``; output pixel
        ``(scale * y + dy, scale * x + dx)`` is pixel ``(y, x)`` of slice
        ``dy * scale + dx`` (pixel shuffle).
    """
    if slices.dim() == 4:
        slices = slices.unsqueeze(2)
    b, k, c, h, w = slices.shape
    if k != scale * scale:
        raise ValueError(f'expected {scale * scale} slices for scale '
                         f'{scale}, got {k}')
    x = slices.transpose(1, 2).reshape(b, c * k, h, w)
    return F.pixel_shuffle(x, scale)


class BaseSAMDecoderHead(BaseModule):
    """Holds SAM's prompt encoder and mask decoder and runs them batched.

    Args:
        image_size (int): Square input size of the image encoder (the
            embedding is ``image_size / 16`` wide).
        checkpoint (str, optional): Official full-SAM checkpoint; ``None``
            keeps random weights (tests).
        frozen (bool): Freeze the SAM parts.
        init_cfg (dict, optional): mmengine initialisation config.
    """

    #: Input pixels per output pixel.
    out_stride: int = 4

    def __init__(self,
                 image_size: int = 1024,
                 checkpoint: Optional[str] = None,
                 frozen: bool = True,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.image_size = int(image_size)
        self.prompt_encoder = build_sam_prompt_encoder(self.image_size)
        self.mask_decoder = build_sam_mask_decoder()
        self.checkpoint = checkpoint
        if checkpoint is not None:
            load_sam_part(self.prompt_encoder, checkpoint, 'prompt_encoder.')
            load_sam_part(self.mask_decoder, checkpoint, 'mask_decoder.')
        self.frozen = frozen
        if frozen:
            for p in self.sam_parameters():
                p.requires_grad_(False)

    def sam_parameters(self):
        """Parameters of the SAM prompt encoder and mask decoder."""
        yield from self.prompt_encoder.parameters()
        yield from self.mask_decoder.parameters()

    @property
    def embedding_size(self) -> Tuple[int, int]:
        """``(h, w)`` of the image embedding."""
        return tuple(self.prompt_encoder.image_embedding_size)

    def _check_inputs(self, image_embedding: Tensor,
                      mask_prompt: Optional[Tensor]) -> None:
        h, w = self.embedding_size
        if (image_embedding.dim() != 4
                or image_embedding.shape[1:] != (PROMPT_EMBED_DIM, h, w)):
            raise ValueError(
                f'image_embedding must be B x {PROMPT_EMBED_DIM} x {h} x {w}'
                f' (image_size={self.image_size}), got '
                f'{tuple(image_embedding.shape)}')
        if mask_prompt is not None and mask_prompt.shape != (
                image_embedding.shape[0], 1, 4 * h, 4 * w):
            raise ValueError(
                f'mask_prompt must be B x 1 x {4 * h} x {4 * w}, got '
                f'{tuple(mask_prompt.shape)}')

    def embed_prompts(self, mask_prompt: Optional[Tensor],
                      batch_size: int) -> Tuple[Tensor, Tensor]:
        """Sparse and dense prompt embeddings (no points or boxes).

        Args:
            mask_prompt (Tensor, optional): ``B x 1 x 4h x 4w`` float mask;
                ``None`` uses SAM's ``no_mask_embed``.
            batch_size (int): ``B``.

        Returns:
            tuple[Tensor, Tensor]: ``B x 0 x 256`` sparse and
            ``B x 256 x h x w`` dense embeddings.
        """
        sparse, dense = self.prompt_encoder(
            points=None, boxes=None, masks=mask_prompt)
        if mask_prompt is None:
            sparse = sparse.expand(batch_size, -1, -1)
            dense = dense.expand(batch_size, -1, -1, -1)
        return sparse, dense

    def run_transformer(
            self,
            image_embedding: Tensor,
            mask_prompt: Optional[Tensor] = None,
            extra_tokens: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        """SAM's two-way transformer, one prompt set per image.

        Token order (as SAM's ``predict_masks``): IoU token, 4 mask tokens,
        ``extra_tokens``, sparse prompt tokens.

        Args:
            image_embedding (Tensor): ``B x 256 x h x w``.
            mask_prompt (Tensor, optional): ``B x 1 x 4h x 4w``.
            extra_tokens (Tensor, optional): ``K x 256`` learnable tokens
                shared by all images.

        Returns:
            tuple[Tensor, Tensor]: Output tokens ``B x T x 256`` and the
            updated image embedding ``B x 256 x h x w``.
        """
        self._check_inputs(image_embedding, mask_prompt)
        b, c, h, w = image_embedding.shape
        dec = self.mask_decoder
        tokens = [dec.iou_token.weight, dec.mask_tokens.weight]
        if extra_tokens is not None:
            tokens.append(extra_tokens)
        tokens = torch.cat(tokens, dim=0).unsqueeze(0).expand(b, -1, -1)
        sparse, dense = self.embed_prompts(mask_prompt, b)
        tokens = torch.cat([tokens, sparse.to(tokens.dtype)], dim=1)
        src = image_embedding + dense
        pos = self.prompt_encoder.get_dense_pe().expand(b, -1, -1, -1)
        hs, src = dec.transformer(src, pos, tokens)
        return hs, src.transpose(1, 2).reshape(b, c, h, w)

    def forward(self,
                image_embedding: Tensor,
                encoder_feat: Optional[Tensor] = None,
                mask_prompt: Optional[Tensor] = None) -> Tensor:
        raise NotImplementedError


@MODELS.register_module()
class SAMMaskDecoderHead(BaseSAMDecoderHead):
    """SAM's mask decoder, single-mask output (Table 3 baseline).

    Equal to ``MaskDecoder(..., multimask_output=False)`` of
    ``segment_anything`` run image by image, batched; it passes gradients
    to the image embedding. With ``frozen`` alone it has no trainable
    parameter. AMA-SAM's Table 3 compares it with the HR-Decoder keeping
    everything else constant, and the HR-Decoder trains about 2.3 M
    parameters (slice tokens, slice MLPs, encoder branch) on top of the
    frozen SAM decoder: ``train_mask_decoder=True`` makes the comparison
    fair by training SAM's mask decoder itself (4.06 M parameters; the
    prompt encoder stays frozen) -- the choice of the Table 3 config.

    Args:
        image_size (int): Square input size of the image encoder.
        checkpoint (str, optional): Official full-SAM checkpoint.
        frozen (bool): Freeze the SAM parts.
        train_mask_decoder (bool): Train the mask decoder even when
            ``frozen`` (the prompt encoder stays frozen).
        init_cfg (dict, optional): mmengine initialisation config.
    """

    out_stride = 4

    def __init__(self,
                 image_size: int = 1024,
                 checkpoint: Optional[str] = None,
                 frozen: bool = True,
                 train_mask_decoder: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(
            image_size=image_size,
            checkpoint=checkpoint,
            frozen=frozen,
            init_cfg=init_cfg)
        self.train_mask_decoder = bool(train_mask_decoder)
        if self.train_mask_decoder:
            self.mask_decoder.requires_grad_(True)

    def forward(self,
                image_embedding: Tensor,
                encoder_feat: Optional[Tensor] = None,
                mask_prompt: Optional[Tensor] = None) -> Tensor:
        """Mask logits.

        Args:
            image_embedding (Tensor): ``B x 256 x h x w``.
            encoder_feat (Tensor, optional): Unused (shared interface).
            mask_prompt (Tensor, optional): ``B x 1 x 4h x 4w``.

        Returns:
            Tensor: ``B x 1 x 4h x 4w`` logits.
        """
        hs, src = self.run_transformer(image_embedding, mask_prompt)
        dec = self.mask_decoder
        mask_feat = dec.output_upscaling(src)  # B x 32 x 4h x 4w
        hyper = dec.output_hypernetworks_mlps[0](hs[:, 1])  # B x 32
        return torch.einsum('bc,bchw->bhw', hyper, mask_feat).unsqueeze(1)


@MODELS.register_module()
class HRDecoderHead(BaseSAMDecoderHead):
    """AMA-SAM's High-Resolution Decoder (Sec. 3.3, Eq. 4-5).

    * Multi-token Slices Producer, token branch: ``num_slices`` (16)
      learnable slice tokens join SAM's output tokens and the prompt tokens
      in SAM's frozen two-way transformer; a 3-layer MLP per slice
      (``256 -> 256 -> 32``, like SAM's hypernetwork MLPs) maps each
      updated token to 32 channels.
    * Feature branch (Eq. 4): ``Conv(F_encoder)`` = ``ConvT(C, 64, k2, s2)
      -> LayerNorm2d -> GELU -> ConvT(64, 32, k2, s2)`` (SAM's
      ``output_upscaling`` layout, trainable) brings the encoder features
      from ``h`` to ``4h`` and 32 channels; it is added to SAM's upscaled
      mask features ``F_mask`` (``B x 32 x 4h x 4w``), up-sampled x4 to
      ``16h`` and split by the Feature Unensemble Module
      (:func:`feature_unensemble`, pixel unshuffle) into 16 slice features
      of ``4h x 4w``; slice ``i = 4 dy + dx`` is sub-pixel position
      ``(dy, dx)``.
    * Eq. 5: ``S_i = MLP_i(T'_i) . F_slice_i`` (dot product over the 32
      channels) -> ``B x 16 x 4h x 4w``; the Pixel Ensemble Module
      (:func:`pixel_ensemble`, pixel shuffle x4) gives
      ``B x 1 x 16h x 16w`` (1024 x 1024 for a 64 x 64 embedding).

    The x4 ``UpSample`` of Eq. 4 is bilinear (``align_corners=False``),
    parameter-free: with it, slice ``i`` reads the feature map interpolated
    at its own sub-pixel offset, so the 16 slices see different
    (neighbour-weighted) features, whereas a ``k4 s4`` transposed conv
    would only re-project the same ``4h`` pixel per slice. The learned
    capacity sits in the encoder branch and the slice MLPs.

    Initialisation (``init_slices_from_sam``, the paper does not say):
    every slice token starts as SAM's first mask token and every slice MLP
    as SAM's first hypernetwork MLP, and the last layer of the encoder
    branch starts at zero, so the untrained head outputs (almost) SAM's
    single-mask logits up-sampled bilinearly x4; training then departs
    from SAM's pretrained decoder rather than from noise.

    Args:
        image_size (int): Square input size of the image encoder.
        checkpoint (str, optional): Official full-SAM checkpoint.
        in_channels (int): Channels of ``encoder_feat``.
        num_slices (int): Slice tokens; 16 (x4) as in the paper, or 4 / 1.
        init_slices_from_sam (bool): See above; else PyTorch defaults.
        frozen (bool): Freeze the SAM parts.
        init_cfg (dict, optional): mmengine initialisation config.
    """

    out_stride = 1

    def __init__(self,
                 image_size: int = 1024,
                 checkpoint: Optional[str] = None,
                 in_channels: int = PROMPT_EMBED_DIM,
                 num_slices: int = 16,
                 init_slices_from_sam: bool = True,
                 frozen: bool = True,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(
            image_size=image_size,
            checkpoint=checkpoint,
            frozen=frozen,
            init_cfg=init_cfg)
        if num_slices not in (1, 4, 16):
            raise ValueError(f'num_slices must be 1, 4 or 16, got '
                             f'{num_slices}')
        self.num_slices = num_slices
        self.scale = math.isqrt(num_slices)
        self.out_stride = 4 // self.scale
        self.in_channels = in_channels
        dim = PROMPT_EMBED_DIM
        mask_dim = self.mask_decoder.transformer_dim // 8
        self.slice_tokens = nn.Embedding(num_slices, dim)
        self.slice_mlps = nn.ModuleList(
            [MLP(dim, dim, mask_dim, 3) for _ in range(num_slices)])
        self.encoder_upscaling = nn.Sequential(
            nn.ConvTranspose2d(in_channels, dim // 4, 2, stride=2),
            LayerNorm2d(dim // 4), nn.GELU(),
            nn.ConvTranspose2d(dim // 4, mask_dim, 2, stride=2))
        if init_slices_from_sam:
            self.init_slices_from_sam()

    @torch.no_grad()
    def init_slices_from_sam(self) -> None:
        """Copy SAM's mask token 0 / hypernetwork MLP 0 into every slice and
        zero the encoder branch's last layer (see the class docstring)."""
        dec = self.mask_decoder
        self.slice_tokens.weight.copy_(
            dec.mask_tokens.weight[:1].expand_as(self.slice_tokens.weight))
        state = dec.output_hypernetworks_mlps[0].state_dict()
        for mlp in self.slice_mlps:
            mlp.load_state_dict(state)
        nn.init.zeros_(self.encoder_upscaling[-1].weight)
        nn.init.zeros_(self.encoder_upscaling[-1].bias)

    def forward(self,
                image_embedding: Tensor,
                encoder_feat: Optional[Tensor] = None,
                mask_prompt: Optional[Tensor] = None) -> Tensor:
        """High-resolution mask logits.

        Args:
            image_embedding (Tensor): ``B x 256 x h x w``.
            encoder_feat (Tensor, optional): ``B x in_channels x h x w``
                encoder features ``F_encoder`` (default: the image
                embedding).
            mask_prompt (Tensor, optional): ``B x 1 x 4h x 4w``.

        Returns:
            Tensor: ``B x 1 x 16h x 16w`` logits (``4 * scale`` times the
            embedding size).
        """
        if encoder_feat is None:
            encoder_feat = image_embedding
        b, _, h, w = image_embedding.shape
        if encoder_feat.shape != (b, self.in_channels, h, w):
            raise ValueError(
                f'encoder_feat must be {b} x {self.in_channels} x {h} x {w}'
                f', got {tuple(encoder_feat.shape)}')
        hs, src = self.run_transformer(image_embedding, mask_prompt,
                                       self.slice_tokens.weight)
        first = 1 + self.mask_decoder.num_mask_tokens
        slice_out = hs[:, first:first + self.num_slices]  # B x K x 256
        mask_feat = self.mask_decoder.output_upscaling(src)  # B x 32 x 4h
        feat = self.encoder_upscaling(encoder_feat) + mask_feat
        feat = F.interpolate(
            feat, scale_factor=self.scale, mode='bilinear',
            align_corners=False)  # B x 32 x 16h x 16w
        slices = feature_unensemble(feat, self.scale)  # B x K x 32 x 4h x 4w
        hyper = torch.stack(
            [mlp(slice_out[:, i]) for i, mlp in enumerate(self.slice_mlps)],
            dim=1)  # B x K x 32
        slice_maps = torch.einsum('bkc,bkchw->bkhw', hyper, slices)
        return pixel_ensemble(slice_maps, self.scale)
