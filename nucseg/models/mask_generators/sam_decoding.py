"""SAM mask decoding with less repeated work, same masks.

Two pieces used by :class:`~nucseg.models.mask_generators.sam_point_masks.
SAMPointMaskGenerator`, both checked against ``segment_anything`` 1.0 by
the tests (``tests/test_models/test_mask_generators``):

* :class:`SharedImageDecoding` runs SAM's mask decoder for many point
  prompts on one image embedding, doing the prompt-independent work once.
* :func:`logits_to_masks` thresholds SAM's upsampled logits while
  upsampling only a window around each mask.
"""
import math
from fractions import Fraction
from math import gcd
from typing import List, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from segment_anything.modeling import Sam
from torch import nn

from .candidates import tight_crop

__all__ = ['SharedImageDecoding', 'logits_to_masks']


def _is_power_of_two_ratio(a: int, b: int) -> bool:
    r = Fraction(a, b)
    return (r.numerator & (r.numerator - 1)) == 0 and (
        r.denominator & (r.denominator - 1)) == 0


class SharedImageDecoding:
    """SAM's mask decoder with the prompt-independent work done once.

    In :class:`segment_anything.modeling.MaskDecoder` every prompt repeats
    work on the image tokens that does not depend on the prompt: the
    sum of the image embedding and the (constant, no mask prompt) dense
    embedding, its flattening, and in the first two-way block the key and
    value projections of the token-to-image attention and the query
    projection of the image-to-token attention (three of the ten
    ``4096 x 256 -> 128`` projections). They are computed once per patch
    here, with exactly the tensors (shapes and layouts) the per-prompt call
    uses, so with ``exact=True`` a batch of one prompt gives bit-identical
    logits and scores; the remaining operations follow ``segment_anything``
    1.0 op by op (``tests/test_models/test_mask_generators/
    test_sam_decoding.py`` checks the equality).

    With ``exact=False`` the output upscaling (two stride-2 transposed
    convolutions, 60% of the remaining time on CPU) runs as two matrix
    products on the token-major features and only for the chosen mask
    (:meth:`_upscale_gemm`): the same arithmetic in another order, logits
    within ~1e-6 of SAM's.

    Args:
        sam (Sam): The model (eval mode).
        features (torch.Tensor): ``1xCxhxw`` image embedding.
        exact (bool): Follow SAM's operations exactly.
    """

    def __init__(self, sam: Sam, features: torch.Tensor,
                 exact: bool = True) -> None:
        self.sam = sam
        self.exact = exact
        dec = sam.mask_decoder
        pe = sam.prompt_encoder.get_dense_pe()
        dense = sam.prompt_encoder.no_mask_embed.weight.reshape(
            1, -1, 1, 1).expand(1, -1, *features.shape[-2:])
        src = torch.repeat_interleave(features, 1, dim=0) + dense
        pos_src = torch.repeat_interleave(pe, 1, dim=0)
        self.shape = src.shape
        # TwoWayTransformer.forward: B x HW x C views.
        self.keys = src.flatten(2).permute(0, 2, 1)
        self.key_pe = pos_src.flatten(2).permute(0, 2, 1)
        first = dec.transformer.layers[0]
        k = self.keys + self.key_pe
        self.t2i_k = first.cross_attn_token_to_image.k_proj(k)
        self.t2i_v = first.cross_attn_token_to_image.v_proj(self.keys)
        self.i2t_q = first.cross_attn_image_to_token.q_proj(k)
        # From the second block on, ``keys`` is a contiguous LayerNorm
        # output and ``keys + key_pe`` takes its layout; a contiguous copy
        # of the (transposed) positional encoding gives the same sums
        # without strided reads.
        self.key_pe_c = self.key_pe.contiguous()
        # ``keys + attn_out`` of the first block: same sums, no strided
        # reads (the LayerNorm after it makes its input contiguous anyway).
        self.keys_c = self.keys.contiguous()

    @staticmethod
    def _attend(m: nn.Module, q: torch.Tensor, k: torch.Tensor,
                v: torch.Tensor) -> torch.Tensor:
        """``Attention.forward`` after the input projections."""
        q = m._separate_heads(q, m.num_heads)
        k = m._separate_heads(k, m.num_heads)
        v = m._separate_heads(v, m.num_heads)
        c_per_head = q.shape[-1]
        attn = q @ k.permute(0, 1, 3, 2)
        attn = attn / math.sqrt(c_per_head)
        attn = torch.softmax(attn, dim=-1)
        out = attn @ v
        out = m._recombine_heads(out)
        return m.out_proj(out)

    def __call__(self, sparse_emb: torch.Tensor, multimask_output: bool
                 ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Mask logits and IoU prediction of a batch of prompts.

        Args:
            sparse_emb (torch.Tensor): ``BxTxC`` sparse prompt embeddings.
            multimask_output (bool): Choose among SAM's three multimask
                outputs (highest predicted IoU) instead of the single one.

        Returns:
            tuple[torch.Tensor, torch.Tensor]: ``(B, 1, h, w)`` logits and
            ``(B,)`` IoU predictions of the chosen mask.
        """
        dec = self.sam.mask_decoder
        tr = dec.transformer
        b = sparse_emb.shape[0]
        # MaskDecoder.predict_masks
        output_tokens = torch.cat(
            [dec.iou_token.weight, dec.mask_tokens.weight], dim=0)
        output_tokens = output_tokens.unsqueeze(0).expand(b, -1, -1)
        tokens = torch.cat((output_tokens, sparse_emb), dim=1)
        key_pe = self.key_pe_c.expand(b, -1, -1)
        # TwoWayTransformer.forward, first block with the cached parts.
        first = tr.layers[0]
        query_pe = tokens
        queries = first.self_attn(q=tokens, k=tokens, v=tokens)
        queries = first.norm1(queries)
        q = queries + query_pe
        t2i = first.cross_attn_token_to_image
        attn_out = self._attend(t2i, t2i.q_proj(q),
                                self.t2i_k.expand(b, -1, -1),
                                self.t2i_v.expand(b, -1, -1))
        queries = queries + attn_out
        queries = first.norm2(queries)
        mlp_out = first.mlp(queries)
        queries = queries + mlp_out
        queries = first.norm3(queries)
        q = queries + query_pe
        i2t = first.cross_attn_image_to_token
        attn_out = self._attend(i2t, self.i2t_q.expand(b, -1, -1),
                                i2t.k_proj(q), i2t.v_proj(queries))
        keys = self.keys_c.expand(b, -1, -1) + attn_out
        keys = first.norm4(keys)
        for layer in tr.layers[1:]:
            queries, keys = layer(
                queries=queries, keys=keys, query_pe=tokens, key_pe=key_pe)
        q = queries + tokens
        k = keys + key_pe
        attn_out = tr.final_attn_token_to_image(q=q, k=k, v=keys)
        queries = queries + attn_out
        hs = tr.norm_final_attn(queries)
        # Back in MaskDecoder.predict_masks.
        iou_token_out = hs[:, 0, :]
        mask_tokens_out = hs[:, 1:(1 + dec.num_mask_tokens), :]
        iou_pred = dec.iou_prediction_head(iou_token_out)
        rows = torch.arange(b, device=iou_pred.device)
        if multimask_output:
            best = iou_pred[:, 1:].argmax(1) + 1
        else:
            best = torch.zeros(b, dtype=torch.long, device=iou_pred.device)
        if self.exact:
            _, c, h, w = self.shape
            src = keys.transpose(1, 2).view(b, c, h, w)
            upscaled = dec.output_upscaling(src)
            hyper_in = torch.stack([
                dec.output_hypernetworks_mlps[i](mask_tokens_out[:, i, :])
                for i in range(dec.num_mask_tokens)
            ], dim=1)
            b, c, h, w = upscaled.shape
            masks = (hyper_in @ upscaled.view(b, c, h * w)).view(
                b, -1, h, w)
            return masks[rows, best][:, None], iou_pred[rows, best]
        hyper = torch.stack([
            dec.output_hypernetworks_mlps[int(t)](mask_tokens_out[r, int(t)])
            for r, t in enumerate(best.tolist())
        ])
        return self._upscale_gemm(keys, hyper), iou_pred[rows, best]

    def _upscale_gemm(self, keys: torch.Tensor,
                      hyper: torch.Tensor) -> torch.Tensor:
        """SAM's output upscaling and hypernetwork product as GEMMs.

        ``output_upscaling`` is ConvTranspose(k=2, s=2) -> LayerNorm2d ->
        GELU -> ConvTranspose(k=2, s=2) -> GELU: every image token becomes
        a ``4x4`` block independently, so both transposed convolutions are
        matrix products on the token-major ``B x HW x C`` keys (no layout
        copies) and only the chosen mask's hypernetwork vector is applied.
        Mathematically equal to SAM's path; float rounding differs.

        Args:
            keys (torch.Tensor): ``B x hw x C`` transformer image tokens.
            hyper (torch.Tensor): ``B x C2`` hypernetwork output.

        Returns:
            torch.Tensor: ``(B, 1, 4h, 4w)`` logits.
        """
        ct1, ln, act1, ct2, act2 = self.sam.mask_decoder.output_upscaling
        _, _, h, w = self.shape
        b = keys.shape[0]
        c1, c2 = ct1.out_channels, ct2.out_channels
        # Weights (C_in, C_out, 2, 2) -> (C_in, 2 * 2 * C_out).
        w1 = ct1.weight.permute(0, 2, 3, 1).reshape(ct1.in_channels, -1)
        w2 = ct2.weight.permute(0, 2, 3, 1).reshape(c1, -1)
        b1 = ct1.bias.repeat(4)
        b2 = ct2.bias.repeat(4)
        y = torch.addmm(b1, keys.reshape(b * h * w, -1), w1)
        y = F.layer_norm(y.view(b * h * w * 4, c1), (c1, ), ln.weight,
                         ln.bias, ln.eps)
        y = act1(y)
        z = torch.addmm(b2, y, w2).view(b, h * w * 16, c2)
        z = act2(z)
        logits = torch.bmm(z, hyper[:, :, None])
        # Index order (i, j, a, c, a2, c2) -> rows 4i + 2a + a2,
        # cols 4j + 2c + c2.
        logits = logits.view(b, h, w, 2, 2, 2, 2)
        logits = logits.permute(0, 1, 3, 5, 2, 4, 6).reshape(
            b, 1, 4 * h, 4 * w)
        return logits


def _window_ok(sam: Sam, low_size: int, input_size: Tuple[int, int],
               original_size: Tuple[int, int]) -> bool:
    img = sam.image_encoder.img_size
    return (low_size * 4 == img and tuple(input_size) == (img, img)
            and original_size[0] == original_size[1]
            and _is_power_of_two_ratio(img, original_size[0]))


@torch.inference_mode()
def logits_to_masks(sam: Sam,
                    low: torch.Tensor,
                    input_size: Tuple[int, int],
                    original_size: Tuple[int, int],
                    exact_upsample: bool = False
                    ) -> Tuple[np.ndarray, List[np.ndarray]]:
    """``sam.postprocess_masks(low) > sam.mask_threshold`` as crops.

    SAM upsamples the low-resolution logits bilinearly to the encoder
    size, crops the padding and resizes to the original size. Bilinear
    interpolation is a convex combination, so an output pixel can only be
    positive if one of the low-resolution logits it depends on is: the
    logits are thresholded at low resolution, and both interpolations are
    run only on that box plus a margin of two low-resolution pixels. When
    the size ratios are powers of two (e.g. a 512-px square patch and a
    1024 encoder) the window's sampling positions equal the full-size ones
    exactly and the masks are identical; otherwise, or with
    ``exact_upsample``, the full-size path is used.

    Args:
        sam (Sam): The model (sizes and threshold).
        low (torch.Tensor): ``(B, 1, h, w)`` low-resolution logits.
        input_size (tuple[int, int]): Resized image size before padding.
        original_size (tuple[int, int]): ``(H, W)`` of the image.
        exact_upsample (bool): Always upsample the whole image.

    Returns:
        tuple[np.ndarray, list[np.ndarray]]: ``(B, 4)`` boxes ``x0, y0,
        x1, y1`` (exclusive ends) and ``B`` boolean crops.
    """
    thr = sam.mask_threshold
    boxes, crops = [], []
    if exact_upsample or not _window_ok(sam, low.shape[-1], input_size,
                                        original_size):
        full = sam.postprocess_masks(low, input_size, original_size) > thr
        for m in full[:, 0].cpu().numpy():
            box, crop = tight_crop(m)
            boxes.append(box)
            crops.append(crop)
        return np.array(boxes, np.int64).reshape(-1, 4), crops
    lsz = low.shape[-1]
    img = sam.image_encoder.img_size
    size = original_size[0]
    # Window offsets must map to whole output pixels: multiples of g.
    g = img // gcd(4 * size, img)
    pos = low[:, 0] > thr
    row_any = pos.any(2).cpu().numpy()
    col_any = pos.any(1).cpu().numpy()
    margin = 2
    for b in range(len(low)):
        rows = np.flatnonzero(row_any[b])
        if rows.size == 0:
            boxes.append(np.zeros(4, np.int64))
            crops.append(np.zeros((0, 0), bool))
            continue
        cols = np.flatnonzero(col_any[b])
        r0 = max(rows[0] - margin, 0) // g * g
        c0 = max(cols[0] - margin, 0) // g * g
        r1 = min(-(-(rows[-1] + 1 + margin) // g) * g, lsz)
        c1 = min(-(-(cols[-1] + 1 + margin) // g) * g, lsz)
        up = F.interpolate(
            low[b:b + 1, :, r0:r1, c0:c1], (4 * (r1 - r0), 4 * (c1 - c0)),
            mode='bilinear',
            align_corners=False)
        up = F.interpolate(
            up, (4 * (r1 - r0) * size // img, 4 * (c1 - c0) * size // img),
            mode='bilinear',
            align_corners=False)
        box, crop = tight_crop((up[0, 0] > thr).cpu().numpy(),
                               (4 * c0 * size // img, 4 * r0 * size // img))
        boxes.append(box)
        crops.append(crop)
    return np.array(boxes, np.int64).reshape(-1, 4), crops
