"""AMASAM segmentor: Eq. 6 losses, CGRL gradients end to end, inference."""
import pytest
import torch
from mmengine.config import Config
from mmengine.structures import PixelData

from nucseg.registry import MODELS
from nucseg.structures import NucleiDataSample
from nucseg.utils import register_all_modules

CONFIG = 'configs/ama_sam/ama-sam_tiny_hr-cgrl_1xb4-200it_synth-3dom-256.py'
SIZE = 64


def _model(repo_root, **overrides):
    register_all_modules()
    cfg = Config.fromfile(repo_root / CONFIG)
    m = cfg.model
    m.data_preprocessor.size = (SIZE, SIZE)
    m.backbone.image_size = SIZE
    m.decode_head.image_size = SIZE
    for key, value in overrides.items():  # replace, not merge
        m[key] = value
    torch.manual_seed(0)
    return MODELS.build(m)


def _batch(primary, seed=0, size=SIZE):
    g = torch.Generator().manual_seed(seed)
    inputs = torch.randn(len(primary), 3, size, size, generator=g)
    samples = []
    for i, p in enumerate(primary):
        s = NucleiDataSample()
        gt = torch.zeros(1, size, size, dtype=torch.long)
        gt[:, 8 + i:24 + i, 10:30] = 1
        s.gt_sem_seg = PixelData(data=gt)
        s.set_metainfo(dict(is_primary=bool(p), domain_id=0 if p else 1,
                            domain='main' if p else 'aux',
                            img_shape=(size, size), ori_shape=(size, size)))
        samples.append(s)
    return inputs, samples


def _adapter_grads(model):
    return [p.grad for n, p in model.backbone.named_parameters()
            if p.requires_grad]


def test_losses_are_eq6_terms(repo_root):
    model = _model(repo_root)
    model.loss_align.set_domain_sizes([4, 12])
    losses = model.loss(*_batch([True, False]))
    assert {'loss_fine', 'loss_coarse', 'loss_cgrl'} <= set(losses)
    assert all(torch.isfinite(v) for v in losses.values())
    # alpha and beta scale their terms.
    model.alpha, model.beta = 2.0, 0.5
    scaled = model.loss(*_batch([True, False]))
    assert torch.allclose(scaled['loss_cgrl'], 2 * losses['loss_cgrl'])
    assert torch.allclose(scaled['loss_coarse'], 0.5 * losses['loss_coarse'])
    assert torch.allclose(scaled['loss_fine'], losses['loss_fine'])


def test_cgrl_blocks_primary_and_reverses_auxiliary(repo_root):
    """Only the adversarial term: primary samples leave the adapters
    untouched (Eq. 2, second case); for auxiliary samples CGRL is the
    plain reversal scaled by lambda (first case; the sign of the plain
    GRL is tested in test_layers/test_grl.py)."""
    model = _model(repo_root)
    # All-primary batch: the discriminator learns, the encoder does not.
    model.zero_grad()
    model.loss(*_batch([True, True]))['loss_cgrl'].backward()
    assert all(g is None or g.abs().max() == 0
               for g in _adapter_grads(model))
    assert any(p.grad is not None and p.grad.abs().max() > 0
               for p in model.discriminator.parameters())

    # Auxiliary batch: CGRL(lambda=0.5) == 0.5 * GRL(lambda=1).
    model.grl_lambda = 0.5
    model.zero_grad()
    model.loss(*_batch([False, False]))['loss_cgrl'].backward()
    reversed_grads = [g.clone() for g in _adapter_grads(model)]
    model.grl_lambda = 1.0
    model.alignment = 'grl'  # same for an all-auxiliary batch
    model.zero_grad()
    model.loss(*_batch([False, False]))['loss_cgrl'].backward()
    plain_grl = _adapter_grads(model)
    assert any(g.abs().max() > 0 for g in plain_grl)
    for a, b in zip(reversed_grads, plain_grl):
        torch.testing.assert_close(a, 0.5 * b, rtol=1e-4, atol=1e-8)


def test_grl_ablation_reverses_primary_too(repo_root):
    model = _model(repo_root, alignment='grl')
    model.zero_grad()
    model.loss(*_batch([True, True]))['loss_cgrl'].backward()
    assert any(g is not None and g.abs().max() > 0
               for g in _adapter_grads(model))


def test_alignment_none_and_errors(repo_root):
    model = _model(repo_root, alignment='none', discriminator=None,
                   loss_align=None)
    assert model.discriminator is None
    losses = model.loss(*_batch([True, False]))
    assert 'loss_cgrl' not in losses and 'loss_fine' in losses
    with pytest.raises(ValueError, match='alignment'):
        _model(repo_root, alignment='dann')
    with pytest.raises(ValueError, match='discriminator'):
        _model(repo_root, discriminator=None)
    model = _model(repo_root)
    inputs, samples = _batch([True])
    del samples[0].metainfo['is_primary']
    samples[0] = NucleiDataSample(metainfo=dict(domain_id=0))
    samples[0].gt_sem_seg = PixelData(
        data=torch.zeros(1, SIZE, SIZE, dtype=torch.long))
    with pytest.raises(KeyError, match='is_primary'):
        model.loss(inputs, samples)


def test_predict_primary_path_at_original_size(repo_root):
    model = _model(repo_root).eval()
    inputs, samples = _batch([True])
    samples[0].set_metainfo(dict(ori_shape=(40, 48)))
    with torch.no_grad():
        out = model.predict(inputs, samples)[0]
    assert tuple(out.pred_instance_map.shape) == (40, 48)
    assert tuple(out.seg_logits.data.shape) == (1, 40, 48)
    probs = out.seg_logits.data
    assert probs.min() >= 0 and probs.max() <= 1  # sigmoid applied
    # The discriminator never runs at inference.
    calls = []
    model.discriminator.register_forward_hook(
        lambda *a: calls.append(1))
    with torch.no_grad():
        model.predict(inputs, samples)
    assert not calls


def test_built_without_test_cfg_predicts(repo_root):
    """mmseg reads ``test_cfg.mode``: the default must be a ConfigDict."""
    model = _model(repo_root, test_cfg=None).eval()
    assert model.test_cfg.mode == 'whole'
    inputs, samples = _batch([True])
    with torch.no_grad():
        out = model.predict(inputs, samples)[0]
    assert 'pred_instance_map' in out


def test_sam_decoder_baseline_trains_its_decoder(repo_root):
    """Table 3 row 1: SAM's mask decoder is trainable (the prompt encoder
    stays frozen), so the baseline has a decoder to fit like the HR row."""
    head = dict(type='SAMMaskDecoderHead', image_size=SIZE,
                train_mask_decoder=True)
    model = _model(repo_root, decode_head=head)
    dec = model.decode_head
    assert all(p.requires_grad for p in dec.mask_decoder.parameters())
    assert not any(p.requires_grad for p in dec.prompt_encoder.parameters())
    n_dec = sum(p.numel() for p in dec.mask_decoder.parameters())
    assert n_dec > 4_000_000
    model.zero_grad()
    model.loss(*_batch([True, False]))['loss_fine'].backward()
    assert any(p.grad is not None and p.grad.abs().max() > 0
               for p in dec.mask_decoder.parameters())
    frozen = _model(repo_root, decode_head=dict(head,
                                                train_mask_decoder=False))
    assert not any(p.requires_grad
                   for p in frozen.decode_head.parameters())


def test_sam_checkpoint_is_read_once(repo_root, tmp_path, monkeypatch):
    """Encoder, prompt encoder and mask decoder load from one file: it is
    read (memory-mapped) once, and again only when it changes."""
    from nucseg.models.utils.sam import build_sam, clear_sam_checkpoint_cache
    torch.manual_seed(0)
    sam = build_sam('tiny', image_size=SIZE)
    path = tmp_path / 'sam_tiny.pth'
    torch.save(sam.state_dict(), path)
    loads = []
    real_load = torch.load

    def counting_load(*args, **kwargs):
        loads.append(kwargs.get('mmap'))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, 'load', counting_load)
    clear_sam_checkpoint_cache()
    model = _model(repo_root,
                   backbone=dict(type='SAMImageEncoder', arch='tiny',
                                 image_size=SIZE, checkpoint=str(path),
                                 adapter=dict(bottleneck=8)),
                   decode_head=dict(type='HRDecoderHead', image_size=SIZE,
                                    checkpoint=str(path)))
    assert loads == [True]
    torch.testing.assert_close(
        model.decode_head.mask_decoder.state_dict()['iou_token.weight'],
        sam.mask_decoder.iou_token.weight)
    enc = {k.split('encoder.', 1)[-1]: v
           for k, v in model.backbone.state_dict().items()}
    torch.testing.assert_close(enc['patch_embed.proj.weight'],
                               sam.image_encoder.patch_embed.proj.weight)
    # A rewritten file is read again (path, mtime and size key the cache).
    torch.save({k: v + 1 for k, v in sam.state_dict().items()}, path)
    import os
    os.utime(path, ns=(1, 1))
    _model(repo_root,
           decode_head=dict(type='HRDecoderHead', image_size=SIZE,
                            checkpoint=str(path)))
    assert len(loads) == 2
    clear_sam_checkpoint_cache()
