"""SAM image-encoder attention on ``F.scaled_dot_product_attention``.

``segment_anything``'s ``Attention`` (image encoder) computes
``softmax(q k^T * scale + B) v`` where ``B`` is the decomposed relative
position bias of MViTv2: for a query at ``(i, j)`` and a key at
``(i', j')``::

    B[(i, j), (i', j')] = q[i, j] . Rh[i, i'] + q[i, j] . Rw[j, j']

with ``Rh = get_rel_pos(H, H, rel_pos_h)`` and ``Rw = get_rel_pos(W, W,
rel_pos_w)`` (``rel_pos_*`` linearly resized when the token grid differs
from the one the table was trained for). The classes here compute the same
thing with ``torch.nn.functional.scaled_dot_product_attention`` (SDPA) in
two ways:

* ``'sdpa'`` -- ``B`` is built and passed as an additive float
  ``attn_mask`` (cast to ``q``'s dtype). Without gradients (inference,
  or a frozen encoder without adapters) SDPA runs its fused kernel. ``B``
  depends on ``q``, so whenever ``q`` requires grad the mask does too, and
  PyTorch (2.14, CPU) then falls back to its unfused "math" path, which
  stores ``N x N`` matrices like the native code.
* ``'sdpa_fold'`` -- ``B`` is folded into the dot product by appending
  ``[q.Rh[i, :], q.Rw[j, :]]`` to the (pre-scaled) query and one-hot codes
  of the key's row and column to the key::

      [q * scale, rel_h, rel_w] . [k, onehot(i'), onehot(j')]
          = q . k * scale + B

  and ``v`` is zero-padded to the same width (the fused CPU kernel needs
  equal head sizes; all three are padded to a multiple of 8); SDPA runs
  without a mask (``scale=1``) and the padding is sliced off. No ``N x N``
  tensor is ever stored, also in training, at the price of about ``C + H
  + W`` instead of ``C`` channels per head in both matrix products.

Both are equal to the native attention up to float rounding (tested to
1e-5 in fp32). :func:`set_attn_impl` swaps the implementation of every
image-encoder ``Attention`` in a module in place, keeping the parameter
objects and names, so official checkpoints load either way; ``'native'``
restores ``segment_anything``'s class.
"""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from segment_anything.modeling.image_encoder import Attention, get_rel_pos
from torch import nn

from nucseg.registry import MODELS

__all__ = [
    'ATTN_IMPLS', 'decomposed_rel_pos', 'rel_pos_attn_mask',
    'sam_attention', 'SDPAAttention', 'set_attn_impl'
]

#: Values accepted by :func:`set_attn_impl`.
ATTN_IMPLS = ('native', 'sdpa', 'sdpa_fold')
_REL_POS_MODES = {'sdpa': 'mask', 'sdpa_fold': 'fold'}


def decomposed_rel_pos(q: torch.Tensor, rel_pos_h: torch.Tensor,
                       rel_pos_w: torch.Tensor, q_size: Tuple[int, int],
                       k_size: Tuple[int, int]
                       ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Height and width terms of the decomposed relative position bias.

    Same maths as ``segment_anything``'s ``add_decomposed_rel_pos``
    (``get_rel_pos`` resizes the tables to the token grid), without
    adding them to an attention map.

    Args:
        q (Tensor): Unscaled queries, ``(..., q_h * q_w, C)``.
        rel_pos_h (Tensor): Height table ``(Lh, C)``.
        rel_pos_w (Tensor): Width table ``(Lw, C)``.
        q_size (tuple[int, int]): Query grid ``(q_h, q_w)``.
        k_size (tuple[int, int]): Key grid ``(k_h, k_w)``.

    Returns:
        tuple[Tensor, Tensor]: ``rel_h`` ``(..., q_h * q_w, k_h)`` and
        ``rel_w`` ``(..., q_h * q_w, k_w)`` in ``q``'s dtype.
    """
    q_h, q_w = q_size
    k_h, k_w = k_size
    if q.shape[-2] != q_h * q_w:
        raise ValueError(f'q has {q.shape[-2]} tokens, q_size {q_size} '
                         f'needs {q_h * q_w}')
    rh = get_rel_pos(q_h, k_h, rel_pos_h).to(q.dtype)  # (q_h, k_h, C)
    rw = get_rel_pos(q_w, k_w, rel_pos_w).to(q.dtype)  # (q_w, k_w, C)
    r_q = q.reshape(*q.shape[:-2], q_h, q_w, q.shape[-1])
    rel_h = torch.einsum('...hwc,hkc->...hwk', r_q, rh)
    rel_w = torch.einsum('...hwc,wkc->...hwk', r_q, rw)
    return (rel_h.reshape(*q.shape[:-1], k_h),
            rel_w.reshape(*q.shape[:-1], k_w))


def rel_pos_attn_mask(rel_h: torch.Tensor,
                      rel_w: torch.Tensor) -> torch.Tensor:
    """Dense additive bias ``(..., Nq, k_h * k_w)`` from the two terms.

    Args:
        rel_h (Tensor): ``(..., Nq, k_h)`` from :func:`decomposed_rel_pos`.
        rel_w (Tensor): ``(..., Nq, k_w)``.
    """
    mask = rel_h[..., :, None] + rel_w[..., None, :]
    return mask.flatten(-2)


def _fold_rel_pos(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                  rel_h: torch.Tensor, rel_w: torch.Tensor, scale: float,
                  k_size: Tuple[int, int]
                  ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Queries/keys/values whose plain dot product includes the bias."""
    k_h, k_w = k_size
    eye_h = torch.eye(k_h, dtype=k.dtype, device=k.device)
    eye_w = torch.eye(k_w, dtype=k.dtype, device=k.device)
    # Key n = i' * k_w + j' gets one-hot codes of i' and j'.
    codes = torch.cat(
        [eye_h.repeat_interleave(k_w, dim=0),
         eye_w.repeat(k_h, 1)], dim=-1)  # (k_h * k_w, k_h + k_w)
    # Zero columns up to a multiple of 8 (alignment of fused GPU kernels);
    # they add nothing to the dot products.
    extra = k_h + k_w
    pad = -(q.shape[-1] + extra) % 8
    q_aug = F.pad(torch.cat([q * scale, rel_h, rel_w], dim=-1), (0, pad))
    k_aug = F.pad(
        torch.cat([k, codes.expand(*k.shape[:-1], -1)], dim=-1), (0, pad))
    v_aug = F.pad(v, (0, extra + pad))
    return q_aug, k_aug, v_aug


def sam_attention(q: torch.Tensor,
                  k: torch.Tensor,
                  v: torch.Tensor,
                  scale: float,
                  rel_pos_h: Optional[torch.Tensor] = None,
                  rel_pos_w: Optional[torch.Tensor] = None,
                  size: Optional[Tuple[int, int]] = None,
                  rel_pos_mode: str = 'mask') -> torch.Tensor:
    """``softmax(q k^T * scale + B) v`` through SDPA.

    Args:
        q (Tensor): ``(B, heads, N, C)`` with ``N = H * W``.
        k (Tensor): ``(B, heads, N, C)``.
        v (Tensor): ``(B, heads, N, C)``.
        scale (float): Logit scale (``C ** -0.5`` in SAM).
        rel_pos_h (Tensor, optional): Height table ``(Lh, C)``; ``None``
            disables the relative position bias.
        rel_pos_w (Tensor, optional): Width table ``(Lw, C)``.
        size (tuple[int, int], optional): Token grid ``(H, W)``; required
            with the relative position bias.
        rel_pos_mode (str): ``'mask'`` (additive float ``attn_mask``) or
            ``'fold'`` (bias folded into ``q``/``k``); see the module doc.

    Returns:
        Tensor: ``(B, heads, N, C)``.
    """
    if rel_pos_h is None or rel_pos_w is None:
        return F.scaled_dot_product_attention(q, k, v, scale=scale)
    if size is None:
        raise ValueError('size (H, W) is required with rel_pos_h/rel_pos_w')
    rel_h, rel_w = decomposed_rel_pos(q, rel_pos_h, rel_pos_w, size, size)
    if rel_pos_mode == 'mask':
        mask = rel_pos_attn_mask(rel_h, rel_w).to(q.dtype)
        return F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, scale=scale)
    if rel_pos_mode == 'fold':
        q_aug, k_aug, v_aug = _fold_rel_pos(q, k, v, rel_h, rel_w, scale,
                                            size)
        out = F.scaled_dot_product_attention(q_aug, k_aug, v_aug, scale=1.0)
        return out[..., :v.shape[-1]]
    raise ValueError(f"rel_pos_mode must be 'mask' or 'fold', "
                     f'got {rel_pos_mode!r}')


@MODELS.register_module()
class SDPAAttention(Attention):
    """``segment_anything``'s image-encoder ``Attention`` on SDPA.

    Same parameters (``qkv``, ``proj``, ``rel_pos_h``, ``rel_pos_w``) and
    state-dict keys as the parent; only ``forward`` differs. Build it from
    an existing module with :meth:`from_attention` (shares the parameter
    objects) or through :func:`set_attn_impl`.

    Args:
        dim, num_heads, qkv_bias, use_rel_pos, rel_pos_zero_init,
        input_size: As for ``segment_anything``'s ``Attention``.
        rel_pos_mode (str): ``'mask'`` or ``'fold'`` (see the module doc).

    Shape:
        - x: ``(B, H, W, dim)`` (a window or the whole token grid)
        - output: ``(B, H, W, dim)``
    """

    def __init__(self,
                 dim: int,
                 num_heads: int = 8,
                 qkv_bias: bool = True,
                 use_rel_pos: bool = False,
                 rel_pos_zero_init: bool = True,
                 input_size: Optional[Tuple[int, int]] = None,
                 rel_pos_mode: str = 'mask') -> None:
        super().__init__(
            dim,
            num_heads=num_heads,
            qkv_bias=qkv_bias,
            use_rel_pos=use_rel_pos,
            rel_pos_zero_init=rel_pos_zero_init,
            input_size=input_size)
        self.rel_pos_mode = _check_mode(rel_pos_mode)

    @classmethod
    def from_attention(cls, attn: Attention,
                       rel_pos_mode: str = 'mask') -> 'SDPAAttention':
        """A new module sharing ``attn``'s parameters and training flag."""
        new = _share_parameters(cls, attn)
        new.rel_pos_mode = _check_mode(rel_pos_mode)
        return new

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, _ = x.shape
        qkv = self.qkv(x).reshape(b, h * w, 3, self.num_heads, -1)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # (B, nH, N, C)
        if self.use_rel_pos:
            out = sam_attention(q, k, v, self.scale, self.rel_pos_h,
                                self.rel_pos_w, (h, w), self.rel_pos_mode)
        else:
            out = sam_attention(q, k, v, self.scale)
        out = out.transpose(1, 2).reshape(b, h, w, -1)
        return self.proj(out)

    def extra_repr(self) -> str:
        return f'num_heads={self.num_heads}, rel_pos_mode={self.rel_pos_mode}'


def _check_mode(mode: str) -> str:
    if mode not in ('mask', 'fold'):
        raise ValueError(f"rel_pos_mode must be 'mask' or 'fold', "
                         f'got {mode!r}')
    return mode


def _share_parameters(cls: type, attn: Attention) -> Attention:
    """An uninitialised ``cls`` holding ``attn``'s modules and parameters."""
    new = cls.__new__(cls)
    nn.Module.__init__(new)
    new.num_heads = attn.num_heads
    new.scale = attn.scale
    new.use_rel_pos = attn.use_rel_pos
    new.qkv = attn.qkv
    new.proj = attn.proj
    if attn.use_rel_pos:
        new.rel_pos_h = attn.rel_pos_h
        new.rel_pos_w = attn.rel_pos_w
    new.train(attn.training)
    return new


def set_attn_impl(module: nn.Module, impl: str) -> int:
    """Switch every image-encoder ``Attention`` below ``module`` in place.

    The replacements share the original parameter objects and keep their
    attribute names, so ``module.state_dict()`` keys, parameter identity
    (optimizer state) and ``requires_grad`` flags are unchanged.

    Args:
        module (nn.Module): e.g. an ``ImageEncoderViT``.
        impl (str): ``'native'`` (``segment_anything``'s code), ``'sdpa'``
            (bias as additive mask) or ``'sdpa_fold'`` (bias folded into
            ``q``/``k``).

    Returns:
        int: Number of attention modules found.
    """
    if impl not in ATTN_IMPLS:
        raise ValueError(f'attn_impl must be one of {ATTN_IMPLS}, '
                         f'got {impl!r}')
    targets = [(name, m) for name, m in module.named_modules()
               if isinstance(m, Attention)]
    for name, attn in targets:
        if impl == 'native':
            new = (attn if type(attn) is Attention else
                   _share_parameters(Attention, attn))
        else:
            new = SDPAAttention.from_attention(attn, _REL_POS_MODES[impl])
        if new is attn:
            continue
        if not name:
            raise ValueError('set_attn_impl needs a parent module, got an '
                             'Attention itself; use '
                             'SDPAAttention.from_attention')
        parent_name, _, child = name.rpartition('.')
        parent = module.get_submodule(parent_name) if parent_name else module
        setattr(parent, child, new)
    return len(targets)
