import copy
import os

import pytest
import torch
from segment_anything import build_sam_vit_b
from segment_anything.modeling.image_encoder import Attention

from nucseg.models.backbones.sam_encoder import (AdapterBlock,
                                                 SAMImageEncoder,
                                                 resize_pos_embed)
from nucseg.models.layers.adapter import Adapter
from nucseg.models.layers.sam_attention import SDPAAttention
from nucseg.models.utils.sam import (SamCheckpointError, build_sam,
                                     build_sam_image_encoder)
from nucseg.registry import MODELS
from nucseg.utils.checkpoint import UntrustedCheckpointError


def _randomise(state, seed):
    """Random values for SAM's constant-initialised tensors.

    Position embeddings, relative position tables, norms and (in the
    tiny model) everything small get new random values, so a tensor that
    is not loaded cannot match the checkpoint by chance.
    """
    gen = torch.Generator().manual_seed(seed)
    return {
        k: (torch.randn(v.shape, generator=gen) * 0.05
            if v.numel() < 100_000 or k.endswith('pos_embed') else v)
        for k, v in state.items()
    }


@pytest.fixture(scope='module')
def vit_b_ckpt(tmp_path_factory):
    """A full-SAM ViT-B state dict with random values, saved once."""
    state = _randomise(build_sam_vit_b().state_dict(), seed=0)
    path = tmp_path_factory.mktemp('sam') / 'sam_vit_b_random.pth'
    torch.save(state, path)
    enc_state = {
        k[len('image_encoder.'):]: v
        for k, v in state.items() if k.startswith('image_encoder.')
    }
    return str(path), enc_state


@pytest.fixture(scope='module')
def tiny_ckpt(tmp_path_factory):
    """A full tiny SAM (image_size 128) with random values."""
    state = _randomise(build_sam('tiny', image_size=128).state_dict(), 1)
    path = tmp_path_factory.mktemp('sam') / 'sam_tiny_random.pth'
    torch.save(state, path)
    return str(path), state


def _tiny(ckpt, **kwargs):
    cfg = dict(type='SAMImageEncoder', arch='tiny', image_size=128,
               checkpoint=ckpt[0])
    cfg.update(kwargs)
    return MODELS.build(cfg)


def _perturb_adapters(model, seed=0):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for a in model.adapters:
            for p in a.parameters():
                p.copy_(torch.randn(p.shape, generator=gen) * 0.1)


def test_vit_b_checkpoint_round_trip(vit_b_ckpt):
    path, enc_state = vit_b_ckpt
    model = MODELS.build(
        dict(type='SAMImageEncoder', arch='vit_b', checkpoint=path))
    assert isinstance(model, SAMImageEncoder)
    own = model.image_encoder.state_dict()
    sam_keys = {k for k in own if '.adapter.' not in k}
    assert sam_keys == set(enc_state)
    for k in sam_keys:
        assert torch.equal(own[k], enc_state[k]), k
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    adapter_params = {
        f'image_encoder.blocks.{i}.adapter.{layer}.{kind}'
        for i in range(12) for layer in ('down', 'up')
        for kind in ('weight', 'bias')
    }
    assert trainable == adapter_params
    assert all(isinstance(b, AdapterBlock) for b in model.image_encoder.blocks)
    assert all(
        type(b.attn) is SDPAAttention for b in model.image_encoder.blocks)
    # Bottleneck 192, scale 0.5, parallel: the UN-SAM defaults.
    ada = model.image_encoder.blocks[0].adapter
    assert (ada.bottleneck, ada.scale) == (192, 0.5)
    # A small input runs through all 12 blocks (windows are padded).
    with torch.no_grad():
        out, = model(torch.randn(1, 3, 64, 48))
    assert out.shape == (1, 256, 4, 3)
    assert torch.isfinite(out).all()


def test_wrong_arch_checkpoint_names_file(tmp_path):
    # A ViT-L-shaped full-SAM file; expanded scalars keep it tiny on disk.
    with torch.device('meta'):
        vit_l = build_sam_image_encoder('vit_l')
    state = {
        f'image_encoder.{k}': torch.zeros(()).expand(v.shape)
        for k, v in vit_l.state_dict().items()
    }
    path = tmp_path / 'sam_vit_l_fake.pth'
    torch.save(state, path)
    with pytest.raises(SamCheckpointError, match='sam_vit_l_fake.pth'):
        MODELS.build(
            dict(type='SAMImageEncoder', arch='vit_b', checkpoint=str(path)))


class _Gadget:

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f'touch {self.marker}', )


def test_pickle_gadget_is_refused(tmp_path):
    marker = tmp_path / 'pwned'
    path = tmp_path / 'evil.pth'
    torch.save({'image_encoder.x': _Gadget(marker)}, path)
    with pytest.raises(UntrustedCheckpointError, match='is not trusted'):
        SAMImageEncoder(arch='tiny', image_size=128, checkpoint=str(path))
    assert not marker.exists()


def test_missing_and_unexpected_keys_are_reported(tiny_ckpt, tmp_path):
    state = dict(tiny_ckpt[1])
    del state['image_encoder.blocks.1.attn.rel_pos_h']
    state['image_encoder.blocks.1.extra'] = torch.zeros(2)
    path = tmp_path / 'broken.pth'
    torch.save(state, path)
    with pytest.raises(SamCheckpointError) as err:
        _tiny((str(path), state))
    msg = str(err.value)
    assert 'broken.pth' in msg
    assert 'blocks.1.attn.rel_pos_h' in msg
    assert 'blocks.1.extra' in msg
    assert 'adapter' not in msg


def _native_encoder(ckpt):
    enc = build_sam_image_encoder('tiny', image_size=128)
    enc.load_state_dict({
        k[len('image_encoder.'):]: v
        for k, v in ckpt[1].items() if k.startswith('image_encoder.')
    })
    return enc.eval()


def test_equals_segment_anything_encoder(tiny_ckpt):
    torch.manual_seed(0)
    x = torch.randn(2, 3, 128, 128)
    with torch.no_grad():
        ref = _native_encoder(tiny_ckpt)(x)
        for impl in ('native', 'sdpa', 'sdpa_fold'):
            model = _tiny(tiny_ckpt, attn_impl=impl, adapter=None).eval()
            out, = model(x)
            tol = 0 if impl == 'native' else 1e-5
            torch.testing.assert_close(out, ref, atol=tol, rtol=0, msg=impl)


def test_sdpa_equals_native_other_size_with_grads(tiny_ckpt):
    """Whole encoder, non-square input (pos_embed and tables resized)."""
    torch.manual_seed(0)
    x = torch.randn(2, 3, 96, 80)
    w = torch.randn(2, 256, 6, 5)
    results = {}
    for impl in ('native', 'sdpa', 'sdpa_fold'):
        model = _tiny(tiny_ckpt, attn_impl=impl)
        _perturb_adapters(model)
        out, = model.train()(x)
        (out * w).sum().backward()
        grads = {
            n: p.grad.clone()
            for n, p in model.named_parameters() if p.requires_grad
        }
        results[impl] = out.detach(), grads
    ref_out, ref_grads = results['native']
    for impl in ('sdpa', 'sdpa_fold'):
        out, grads = results[impl]
        torch.testing.assert_close(out, ref_out, atol=1e-5, rtol=0)
        for n, g in grads.items():
            torch.testing.assert_close(
                g, ref_grads[n], atol=1e-5, rtol=1e-4, msg=f'{impl} {n}')


def test_with_cp_gives_same_gradients(tiny_ckpt):
    torch.manual_seed(0)
    x = torch.randn(2, 3, 64, 64)
    w = torch.randn(2, 256, 4, 4)
    grads = []
    for with_cp in (False, True):
        model = _tiny(tiny_ckpt, with_cp=with_cp).train()
        _perturb_adapters(model)
        out, = model(x)
        (out * w).sum().backward()
        grads.append({
            n: p.grad
            for n, p in model.named_parameters() if p.requires_grad
        })
    assert len(grads[0]) == 8
    for n, g in grads[0].items():
        assert g.abs().sum() > 0, n
        torch.testing.assert_close(grads[1][n], g, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize('placement', ['parallel', 'sequential'])
def test_fresh_adapters_keep_output_then_train(tiny_ckpt, placement):
    torch.manual_seed(0)
    x = torch.randn(2, 3, 64, 64)
    plain = _tiny(tiny_ckpt, adapter=None).eval()
    model = _tiny(
        tiny_ckpt, adapter=dict(bottleneck=16, placement=placement))
    with torch.no_grad():
        ref, = plain(x)
        out, = model.eval()(x)
    assert torch.equal(out, ref)

    frozen = {
        k: v.clone()
        for k, v in model.state_dict().items() if '.adapter.' not in k
    }
    adapters = {
        k: v.clone()
        for k, v in model.state_dict().items() if '.adapter.' in k
    }
    params = [p for p in model.parameters() if p.requires_grad]
    optim = torch.optim.SGD(params, lr=1.0)
    model.train()
    for _ in range(2):  # the 2nd step also moves the down projections
        optim.zero_grad()
        loss = (model(x)[0] * torch.randn(2, 256, 4, 4)).sum()
        loss.backward()
        optim.step()
    after = model.state_dict()
    for k, v in frozen.items():
        assert torch.equal(after[k], v), k
    for k, v in adapters.items():
        assert not torch.equal(after[k], v), k
    with torch.no_grad():
        assert not torch.allclose(model.eval()(x)[0], ref)


def test_adapter_blocks_subset_and_no_adapter(tiny_ckpt):
    model = _tiny(tiny_ckpt, adapter_blocks=[1])
    blocks = model.image_encoder.blocks
    assert blocks[0].adapter is None
    assert isinstance(blocks[1].adapter, Adapter)
    plain = _tiny(tiny_ckpt, adapter=None)
    assert plain.adapters == []
    assert not any(p.requires_grad for p in plain.parameters())
    unfrozen = _tiny(tiny_ckpt, adapter=None, frozen=False)
    assert all(p.requires_grad for p in unfrozen.parameters())


def test_train_mode_keeps_frozen_parts_in_eval(tiny_ckpt):
    model = _tiny(tiny_ckpt).train()
    assert model.training
    for name, m in model.image_encoder.named_modules():
        in_adapter = '.adapter' in f'.{name}'
        assert m.training == in_adapter, name
    model.eval()
    assert not any(m.training for m in model.modules())
    unfrozen = _tiny(tiny_ckpt, frozen=False).train()
    assert all(m.training for m in unfrozen.modules())


def test_init_weights_restores_checkpoint_and_adapters(tiny_ckpt):
    model = _tiny(tiny_ckpt)
    reference = copy.deepcopy(model.state_dict())
    _perturb_adapters(model)
    with torch.no_grad():
        model.image_encoder.pos_embed.add_(1.0)
    model.init_weights()
    state = model.state_dict()
    for k, v in reference.items():
        if '.adapter.down.' in k:
            continue  # re-drawn at random
        assert torch.equal(state[k], v), k


def test_autocast_bf16_close_to_fp32(tiny_ckpt):
    torch.manual_seed(0)
    x = torch.randn(1, 3, 64, 96)
    for impl in ('sdpa', 'sdpa_fold'):
        model = _tiny(tiny_ckpt, attn_impl=impl)
        _perturb_adapters(model)
        model.eval()
        with torch.no_grad():
            ref, = model(x)
            with torch.autocast('cpu', dtype=torch.bfloat16):
                out, = model(x)
        assert torch.isfinite(out).all()
        err = (out.float() - ref).abs().max() / ref.abs().max()
        assert err < 0.1, (impl, float(err))


def test_resize_pos_embed():
    pos = torch.full((1, 8, 8, 4), 0.5)
    assert resize_pos_embed(pos, (8, 8)) is pos
    out = resize_pos_embed(pos, (5, 3))
    assert out.shape == (1, 5, 3, 4)
    torch.testing.assert_close(out, torch.full((1, 5, 3, 4), 0.5))
    # A linear ramp along the width stays monotonic after resizing.
    ramp = torch.arange(8.).view(1, 1, 8, 1).expand(1, 8, 8, 1)
    row = resize_pos_embed(ramp, (8, 16))[0, 0, :, 0]
    assert (row[1:] >= row[:-1]).all()


def test_native_impl_uses_segment_anything_attention(tiny_ckpt):
    model = _tiny(tiny_ckpt, attn_impl='native')
    assert all(type(b.attn) is Attention for b in model.image_encoder.blocks)


@pytest.mark.parametrize('kwargs, err, match', [
    (dict(arch='vit_x'), KeyError, 'vit_x'),
    (dict(image_size=100), ValueError, 'image_size'),
    (dict(attn_impl='flash'), ValueError, 'attn_impl'),
    (dict(adapter=dict(width=3)), ValueError, 'width'),
    (dict(adapter=dict(placement='serial')), ValueError, 'placement'),
    (dict(adapter_blocks=[2]), ValueError, 'adapter_blocks'),
])
def test_invalid_arguments(kwargs, err, match):
    cfg = dict(arch='tiny', image_size=128)
    cfg.update(kwargs)
    with pytest.raises(err, match=match):
        SAMImageEncoder(**cfg)


def test_invalid_inputs():
    model = SAMImageEncoder(arch='tiny', image_size=64)
    with pytest.raises(ValueError, match='Bx3xHxW'):
        model(torch.zeros(1, 1, 64, 64))
    with pytest.raises(ValueError, match='multiples of 16'):
        model(torch.zeros(1, 3, 64, 72))
