import pytest
import torch
import torch.nn.functional as F
from segment_anything.modeling.image_encoder import (Attention,
                                                     add_decomposed_rel_pos)

from nucseg.models.layers.sam_attention import (SDPAAttention,
                                                decomposed_rel_pos,
                                                rel_pos_attn_mask,
                                                set_attn_impl)
from nucseg.models.utils.sam import build_sam, build_sam_image_encoder

MODES = ('mask', 'fold')


def _native(dim, heads, table_size, seed=0):
    """SAM attention with non-zero relative position tables."""
    torch.manual_seed(seed)
    attn = Attention(
        dim, num_heads=heads, qkv_bias=True, use_rel_pos=True,
        input_size=table_size)
    torch.nn.init.normal_(attn.rel_pos_h, std=0.5)
    torch.nn.init.normal_(attn.rel_pos_w, std=0.5)
    return attn


def _compare(native, x, mode):
    sdpa = SDPAAttention.from_attention(native, rel_pos_mode=mode)
    x1 = x.clone().requires_grad_(True)
    x2 = x.clone().requires_grad_(True)
    w = torch.randn_like(x)
    ref = native(x1)
    (ref * w).sum().backward()
    ref_grads = {n: p.grad.clone() for n, p in native.named_parameters()}
    native.zero_grad()
    out = sdpa(x2)
    (out * w).sum().backward()
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)
    torch.testing.assert_close(x2.grad, x1.grad, atol=1e-5, rtol=1e-5)
    for n, p in sdpa.named_parameters():
        torch.testing.assert_close(
            p.grad, ref_grads[n], atol=1e-4, rtol=1e-5, msg=n)
    native.zero_grad()


# (dim, heads, table grid, input batch x grid): windowed blocks see
# windows of the table's size; global blocks are trained at 64x64 tokens
# and see other grids here (tables resized by get_rel_pos).
CASES = {
    'tiny_window': (64, 2, (4, 4), (6, 4, 4)),
    'tiny_global_same': (64, 2, (8, 8), (2, 8, 8)),
    'tiny_global_resized': (64, 2, (64, 64), (2, 6, 5)),
    'vitb_window': (768, 12, (14, 14), (2, 14, 14)),
    'vitb_global_resized': (768, 12, (64, 64), (1, 8, 10)),
}


@pytest.mark.parametrize('mode', MODES)
@pytest.mark.parametrize('case', sorted(CASES))
def test_sdpa_equals_native(case, mode):
    dim, heads, table, (b, h, w) = CASES[case]
    native = _native(dim, heads, table)
    x = torch.randn(b, h, w, dim)
    _compare(native, x, mode)


def test_mask_equals_add_decomposed_rel_pos():
    torch.manual_seed(1)
    rel_h_tab = torch.randn(2 * 7 - 1, 16)
    rel_w_tab = torch.randn(2 * 7 - 1, 16)
    q = torch.randn(3, 5 * 4, 16)
    rel_h, rel_w = decomposed_rel_pos(q, rel_h_tab, rel_w_tab, (5, 4),
                                      (5, 4))
    mask = rel_pos_attn_mask(rel_h, rel_w)
    ref = add_decomposed_rel_pos(
        torch.zeros(3, 20, 20), q, rel_h_tab, rel_w_tab, (5, 4), (5, 4))
    torch.testing.assert_close(mask, ref, atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match='q_size'):
        decomposed_rel_pos(q, rel_h_tab, rel_w_tab, (4, 4), (4, 4))


def test_without_rel_pos():
    torch.manual_seed(0)
    native = Attention(32, num_heads=4, use_rel_pos=False)
    sdpa = SDPAAttention.from_attention(native)
    x = torch.randn(2, 3, 5, 32)
    torch.testing.assert_close(sdpa(x), native(x), atol=1e-5, rtol=0)


@pytest.mark.parametrize('mode', MODES)
def test_autocast_bf16_close_and_dtype_clean(mode, monkeypatch):
    native = _native(64, 2, (8, 8))
    sdpa = SDPAAttention.from_attention(native, rel_pos_mode=mode)
    x = torch.randn(2, 8, 8, 64)
    ref = native(x)
    calls = []
    sdpa_fn = F.scaled_dot_product_attention

    def spy(q, k, v, attn_mask=None, **kwargs):
        calls.append((q.dtype, k.dtype, v.dtype,
                      None if attn_mask is None else attn_mask.dtype))
        return sdpa_fn(q, k, v, attn_mask=attn_mask, **kwargs)

    monkeypatch.setattr(F, 'scaled_dot_product_attention', spy)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = sdpa(x)
    assert out.dtype == torch.bfloat16
    # CUDA's fused kernels need the float mask in the query's dtype.
    bf16 = torch.bfloat16
    expected = (bf16, bf16, bf16, bf16 if mode == 'mask' else None)
    assert calls == [expected]
    err = (out.float() - ref).abs().max() / ref.abs().max()
    assert err < 0.05
    # Pure bf16 weights and inputs (no autocast) run too.
    sdpa_bf16 = SDPAAttention.from_attention(
        _native(64, 2, (8, 8)).to(torch.bfloat16), rel_pos_mode=mode)
    assert sdpa_bf16(x.bfloat16()).dtype == torch.bfloat16


def test_set_attn_impl_keeps_parameters_and_names():
    enc = build_sam_image_encoder('tiny', image_size=64)
    before = {k: v.data_ptr() for k, v in enc.state_dict().items()}
    params = dict(enc.named_parameters())
    assert set_attn_impl(enc, 'sdpa_fold') == 2
    kinds = [type(b.attn) for b in enc.blocks]
    assert kinds == [SDPAAttention, SDPAAttention]
    assert enc.blocks[1].attn.rel_pos_mode == 'fold'
    after = {k: v.data_ptr() for k, v in enc.state_dict().items()}
    assert after == before
    for name, p in enc.named_parameters():
        assert p is params[name]
    set_attn_impl(enc, 'sdpa')
    assert enc.blocks[0].attn.rel_pos_mode == 'mask'
    set_attn_impl(enc, 'native')
    assert [type(b.attn) for b in enc.blocks] == [Attention, Attention]
    assert {k: v.data_ptr() for k, v in enc.state_dict().items()} == before
    with pytest.raises(ValueError, match='attn_impl'):
        set_attn_impl(enc, 'flash')
    # In a whole SAM only the image encoder's attention is swapped (the
    # mask decoder's Attention is another class).
    sam = build_sam('tiny', image_size=64)
    assert set_attn_impl(sam, 'sdpa') == 2
    assert type(sam.image_encoder.blocks[0].attn) is SDPAAttention
    with pytest.raises(ValueError, match='rel_pos_mode'):
        SDPAAttention.from_attention(enc.blocks[0].attn, 'dense')
