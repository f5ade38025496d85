import pytest
import torch
import torch.nn.functional as F

from nucseg.models.heads.sam_decoder_heads import (HRDecoderHead,
                                                   SAMMaskDecoderHead,
                                                   feature_unensemble,
                                                   pixel_ensemble)
from nucseg.models.utils.sam import build_sam
from nucseg.registry import MODELS


def _inputs(b, h, seed=0):
    gen = torch.Generator().manual_seed(seed)
    emb = torch.randn(b, 256, h, h, generator=gen)
    prompt = (torch.rand(b, 1, 4 * h, 4 * h, generator=gen) > 0.7).float()
    return emb, prompt


def test_ensemble_unensemble_exact_inverse():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 8, 12, generator=gen)
    slices = feature_unensemble(x, 4)
    assert slices.shape == (2, 16, 3, 2, 3)
    for dy in range(4):
        for dx in range(4):
            assert torch.equal(slices[:, 4 * dy + dx], x[..., dy::4, dx::4])
    assert torch.equal(pixel_ensemble(slices, 4), x)
    # single-channel slices B x 16 x H x W -> B x 1 x 4H x 4W
    s = torch.randn(2, 16, 5, 6, generator=gen)
    out = pixel_ensemble(s, 4)
    assert out.shape == (2, 1, 20, 24)
    assert torch.equal(feature_unensemble(out, 4)[:, :, 0], s)
    with pytest.raises(ValueError, match='16 slices'):
        pixel_ensemble(torch.randn(1, 4, 2, 2), 4)


@torch.no_grad()
def test_sam_head_equals_segment_anything_decoder():
    torch.manual_seed(0)
    head = MODELS.build(dict(type='SAMMaskDecoderHead', image_size=256))
    assert isinstance(head, SAMMaskDecoderHead) and head.out_stride == 4
    emb, prompt = _inputs(2, 16)
    pe = head.prompt_encoder.get_dense_pe()
    for mp in (prompt, None):
        out = head(emb, None, mp)
        assert out.shape == (2, 1, 64, 64)
        for i in range(2):
            sparse, dense = head.prompt_encoder(
                points=None, boxes=None,
                masks=None if mp is None else mp[i:i + 1])
            ref, _ = head.mask_decoder(emb[i:i + 1], pe, sparse, dense,
                                       multimask_output=False)
            torch.testing.assert_close(out[i:i + 1], ref, rtol=1e-4,
                                       atol=1e-5)


@torch.no_grad()
def test_hr_shapes():
    torch.manual_seed(0)
    head = HRDecoderHead(image_size=1024)
    assert head.out_stride == 1
    emb, prompt = _inputs(1, 64)
    out = head(emb, emb, prompt)
    assert out.shape == (1, 1, 1024, 1024)
    assert torch.isfinite(out).all()
    head = HRDecoderHead(image_size=256)
    emb, prompt = _inputs(2, 16)
    feat = torch.randn(2, 256, 16, 16)
    out = head(emb, feat, prompt)
    assert out.shape == (2, 1, 256, 256)
    assert HRDecoderHead(image_size=256, num_slices=4)(
        emb, None, None).shape == (2, 1, 128, 128)


@torch.no_grad()
def test_hr_eq5_sub_pixel_mapping():
    """Output pixel (4y+dy, 4x+dx) = MLP_i(T'_i) . F_up at that pixel."""
    torch.manual_seed(0)
    head = HRDecoderHead(image_size=128, init_slices_from_sam=False)
    emb, prompt = _inputs(2, 8, seed=1)
    feat = torch.randn(2, 256, 8, 8)
    out = head(emb, feat, prompt)
    hs, src = head.run_transformer(emb, prompt, head.slice_tokens.weight)
    f = head.encoder_upscaling(feat) + head.mask_decoder.output_upscaling(src)
    f_up = F.interpolate(f, scale_factor=4, mode='bilinear',
                         align_corners=False)
    for dy, dx in [(0, 0), (1, 3), (3, 2), (2, 0)]:
        i = 4 * dy + dx
        m = head.slice_mlps[i](hs[:, 5 + i])  # after iou + 4 mask tokens
        expected = torch.einsum('bc,bchw->bhw', m, f_up[..., dy::4, dx::4])
        torch.testing.assert_close(out[:, 0, dy::4, dx::4], expected,
                                   rtol=1e-4, atol=1e-5)


@torch.no_grad()
def test_hr_init_from_sam_starts_at_upsampled_sam_mask():
    torch.manual_seed(0)
    head = HRDecoderHead(image_size=128)  # init_slices_from_sam=True
    emb, prompt = _inputs(2, 8, seed=2)
    out = head(emb, torch.randn(2, 256, 8, 8), prompt)
    hs, src = head.run_transformer(emb, prompt, head.slice_tokens.weight)
    m = head.mask_decoder.output_hypernetworks_mlps[0](hs[:, 5])
    low = torch.einsum('bc,bchw->bhw', m,
                       head.mask_decoder.output_upscaling(src))[:, None]
    expected = F.interpolate(low, scale_factor=4, mode='bilinear',
                             align_corners=False)
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('init_from_sam', [False, True])
def test_frozen_sam_and_trainable_gradients(init_from_sam):
    torch.manual_seed(0)
    head = HRDecoderHead(image_size=128, init_slices_from_sam=init_from_sam)
    frozen = {
        k: v.clone()
        for k, v in head.state_dict().items()
        if k.startswith(('prompt_encoder.', 'mask_decoder.'))
    }
    assert all(not p.requires_grad for p in head.sam_parameters())
    trainable = [p for p in head.parameters() if p.requires_grad]
    n_train = sum(p.numel() for p in trainable)
    assert n_train == sum(
        p.numel() for m in (head.slice_tokens, head.slice_mlps,
                            head.encoder_upscaling) for p in m.parameters())
    emb, prompt = _inputs(2, 8)
    emb.requires_grad_(True)
    opt = torch.optim.Adam(trainable, lr=1e-2)
    out = head(emb, emb, prompt)
    (out * torch.randn_like(out)).mean().backward()
    assert all(p.grad is None for p in head.sam_parameters())
    # through SAM's frozen transformer into the slice tokens, per token
    assert (head.slice_tokens.weight.grad.abs().sum(1) > 0).all()
    for mlp in head.slice_mlps:
        assert mlp.layers[-1].weight.grad.abs().sum() > 0
    assert head.encoder_upscaling[-1].weight.grad.abs().sum() > 0
    if not init_from_sam:
        assert head.encoder_upscaling[0].weight.grad.abs().sum() > 0
    assert emb.grad.abs().sum() > 0
    before = head.slice_tokens.weight.detach().clone()
    opt.step()
    assert not torch.equal(before, head.slice_tokens.weight)
    for k, v in head.state_dict().items():
        if k in frozen:
            assert torch.equal(v, frozen[k]), k


def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    sam = build_sam(arch='tiny', image_size=256)
    path = tmp_path / 'sam_tiny.pth'
    torch.save(sam.state_dict(), path)
    ref = sam.state_dict()
    torch.manual_seed(1)  # different random init in the heads
    for head in (SAMMaskDecoderHead(image_size=256, checkpoint=str(path)),
                 HRDecoderHead(image_size=256, checkpoint=str(path))):
        own = head.state_dict()
        keys = [k for k in own
                if k.startswith(('prompt_encoder.', 'mask_decoder.'))]
        assert set(keys) == {
            k for k in ref if k.startswith(('prompt_encoder.',
                                            'mask_decoder.'))
        }
        for k in keys:
            assert torch.equal(own[k], ref[k]), k
        assert all(not p.requires_grad for p in head.sam_parameters())
    # slices initialised from the loaded (not the random) SAM decoder
    assert torch.equal(head.slice_tokens.weight[7],
                       ref['mask_decoder.mask_tokens.weight'][0])
    assert torch.equal(
        head.slice_mlps[3].layers[0].weight,
        ref['mask_decoder.output_hypernetworks_mlps.0.layers.0.weight'])


def test_bad_input():
    head = SAMMaskDecoderHead(image_size=128)
    emb, prompt = _inputs(1, 8)
    with pytest.raises(ValueError, match='image_embedding'):
        head(torch.randn(1, 256, 16, 16))
    with pytest.raises(ValueError, match='mask_prompt'):
        head(emb, None, prompt[..., :16, :16])
    hr = HRDecoderHead(image_size=128)
    with pytest.raises(ValueError, match='encoder_feat'):
        hr(emb, torch.randn(1, 128, 8, 8))
    with pytest.raises(ValueError, match='num_slices'):
        HRDecoderHead(image_size=128, num_slices=9)
