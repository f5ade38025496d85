"""SAMDA segmentor: branches, per-stage freezing, optimizer, inference."""
import copy

import numpy as np
import pytest
import torch
from mmengine.optim import build_optim_wrapper
from mmengine.structures import PixelData

from nucseg.models.segmentors.samda import (SAMDA_PARTS,
                                            SAMDA_STAGE_TRAINABLE,
                                            match_size)
from nucseg.registry import MODELS
from nucseg.structures import NucleiDataSample
from nucseg.utils import register_all_modules

SIZE = 64


@pytest.fixture(autouse=True)
def _scope():
    register_all_modules()


def tiny_samda_cfg(stage: int = 1, **overrides) -> dict:
    """A CPU-sized SAMDA: tiny random SAM, 5-stage 4..32 nnU-Net."""
    cfg = dict(
        type='SAMDA',
        stage=stage,
        data_preprocessor=dict(type='SAMDADataPreprocessor', sam_size=SIZE),
        unet=dict(type='NNUNetPlainConvUNet', patch_size=SIZE,
                  base_features=4, max_features=32),
        sam_encoder=dict(type='SAMImageEncoder', arch='tiny',
                         image_size=SIZE, checkpoint=None, adapter=None,
                         attn_impl='native'),
        projector=dict(type='SAMEmbeddingProjector', channels=8,
                       out_channels=6))
    cfg.update(overrides)
    return cfg


def build(stage: int = 1, seed: int = 0, **overrides):
    torch.manual_seed(seed)
    model = MODELS.build(tiny_samda_cfg(stage, **overrides))
    model.init_weights()
    return model


def batch(n: int = 2, size: int = SIZE, domains=None, seed: int = 0):
    """``data`` dict as a data loader yields it (grey as RGB uint8)."""
    rng = np.random.default_rng(seed)
    inputs, samples = [], []
    for i in range(n):
        grey = rng.integers(0, 256, (size, size), dtype=np.uint8)
        inputs.append(torch.from_numpy(np.repeat(grey[None], 3, 0)))
        s = NucleiDataSample()
        mask = torch.from_numpy(
            (rng.random((size, size)) > 0.7).astype(np.int64))
        s.gt_sem_seg = PixelData(data=mask[None])
        s.gt_instance_map = PixelData(data=mask[None])
        meta = dict(img_path=f'img{i}.png', ori_shape=(size, size),
                    img_shape=(size, size))
        if domains is not None:
            meta.update(domain_id=domains[i], domain=f'd{domains[i]}',
                        is_primary=domains[i] == 1)
        s.set_metainfo(meta)
        samples.append(s)
    return dict(inputs=inputs, data_samples=samples)


def optim_wrapper(model, lr=0.1):
    return build_optim_wrapper(
        model,
        dict(type='OptimWrapper',
             constructor='TrainableParamsOptimWrapperConstructor',
             optimizer=dict(type='SGD', lr=lr, momentum=0.99, nesterov=True,
                            weight_decay=3e-5)))


def test_forward_shapes_and_concatenation():
    model = build(1)
    grey = model.data_preprocessor(batch(2), False)['inputs']
    assert grey.shape == (2, 1, SIZE, SIZE)
    skips, extra = model.extract_feat(grey)
    assert skips[-1].shape == (2, 32, 4, 4)
    assert extra.shape == (2, 6, 4, 4)  # projector output at the bottleneck
    assert model.sam_features(grey).shape == (2, 6, 4, 4)
    logits = model.seg_logits(grey)
    assert logits.shape == (2, 2, SIZE, SIZE)
    outs = model.seg_logits(grey, deep_supervision=True)
    assert [o.shape[-1] for o in outs] == [64, 32, 16, 8]
    # the SAM branch influences the prediction
    model.projector.convs[-1].bias.data += 5.0
    assert not torch.allclose(model.seg_logits(grey), logits)


def test_match_size_pools_down_and_interpolates_up():
    x = torch.arange(16.).view(1, 1, 4, 4)
    assert torch.equal(match_size(x, (2, 2)),
                       torch.tensor([[[[2.5, 4.5], [10.5, 12.5]]]]))
    assert match_size(x, (8, 8)).shape == (1, 1, 8, 8)
    assert match_size(x, (4, 4)) is x


@pytest.mark.parametrize('stage', [1, 2, 3])
def test_stage_freezing(stage):
    model = build(stage)
    parts = model.part_parameters()
    for name in SAMDA_PARTS:
        want = name in SAMDA_STAGE_TRAINABLE[stage]
        for p in parts[name]:
            assert p.requires_grad == want, (stage, name)
    # the SAM ViT itself is never trained
    assert not any(p.requires_grad for p in model.sam_encoder.parameters())
    if stage == 2:
        trainable = {id(p) for p in model.parameters() if p.requires_grad}
        assert trainable == {id(p) for p in model.projector.parameters()}


def _train_step_checks(model, data, optim):
    names = {id(p): n for n, p in model.named_parameters()}
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    log = model.train_step(data, optim)
    log = model.train_step(data, optim)  # momentum state exists after 1
    state_ids = set(id(p) for p in optim.optimizer.state)
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    own = {id(p) for p in model.parameters()}
    in_optim = {id(p) for g in optim.param_groups for p in g['params']
                if id(p) in own}
    assert in_optim == trainable
    assert state_ids <= trainable and state_ids
    for n, p in model.named_parameters():
        if p.requires_grad:
            continue
        assert id(p) not in state_ids, n
        assert p.grad is None, n
        assert torch.equal(p.detach(), before[n]), f'{n} moved'
    moved = [names[id(p)] for p in model.parameters()
             if p.requires_grad and not torch.equal(p.detach(),
                                                    before[names[id(p)]])]
    return log, moved


def test_stage1_trains_unet_and_projector_only():
    model = build(1)
    optim = optim_wrapper(model)
    log, moved = _train_step_checks(model, batch(2), optim)
    assert {'loss', 'loss_ce', 'loss_dice'} <= set(log)
    assert any(n.startswith('unet.net.encoder') for n in moved)
    assert any(n.startswith('unet.net.decoder') for n in moved)
    assert any(n.startswith('projector') for n in moved)


def test_stage2_perceptual_loss_trains_projector_only():
    model = build(2)
    optim = optim_wrapper(model)
    data = batch(4, domains=[0, 1, 0, 1])
    log, moved = _train_step_checks(model, data, optim)
    assert {'loss_feat', 'loss_style', 'proj_std'} <= set(log)
    assert moved and all(n.startswith('projector') for n in moved)
    # no optimizer state or gradient outside the projector
    proj = {id(p) for p in model.projector.parameters()}
    assert {id(p) for p in optim.optimizer.state} <= proj


def test_stage2_needs_paired_domains():
    model = build(2)
    grey = model.data_preprocessor(batch(3, domains=[0, 0, 1]),
                                   True)['inputs']
    samples = batch(3, domains=[0, 0, 1])['data_samples']
    with pytest.raises(ValueError, match='2 source .* 1 target'):
        model.loss(grey, samples)
    plain = batch(2)['data_samples']
    with pytest.raises(KeyError, match='domain_id'):
        model.loss(grey[:2], plain)


def test_stage3_without_deep_supervision_freezes_unused_heads():
    model = build(3, deep_supervision=False)
    heads = model.unet.net.decoder.seg_layers
    assert all(not p.requires_grad for h in heads[:-1]
               for p in h.parameters())
    assert all(p.requires_grad for p in heads[-1].parameters())
    optim = optim_wrapper(model)
    _train_step_checks(model, batch(2), optim)


def test_trainable_override_and_bad_config():
    model = build(3, trainable=['projector'])
    assert model.trainable_parts == ('projector', )
    with pytest.raises(ValueError, match='unknown parts'):
        build(1, trainable=['decoder'])
    with pytest.raises(ValueError, match='stage must be 1, 2 or 3'):
        build(4)
    with pytest.raises(ValueError, match='extra_bottleneck_channels'):
        cfg = tiny_samda_cfg(1)
        cfg['unet'] = dict(cfg['unet'], extra_bottleneck_channels=3)
        MODELS.build(cfg)
    with pytest.raises(ValueError, match=r"unknown keys \['strid'\]"):
        build(1, test_cfg=dict(mode='slide', crop_size=(64, 64),
                               strid=(32, 32)))
    with pytest.raises(ValueError, match='test_cfg.stride'):
        build(1, test_cfg=dict(mode='slide', crop_size=(64, 64)))
    with pytest.raises(TypeError, match='SAMDADataPreprocessor'):
        MODELS.build(tiny_samda_cfg(
            1, data_preprocessor=dict(type='BaseDataPreprocessor')))


def test_same_state_dict_keys_in_every_stage():
    keys = [set(build(s).state_dict()) for s in (1, 2, 3)]
    assert keys[0] == keys[1] == keys[2]
    # a stage-1 state dict loads strictly into a stage-2 model
    s1 = build(1, seed=1).state_dict()
    m2 = build(2, seed=2)
    m2.load_state_dict(s1, strict=True)
    assert torch.equal(m2.projector.convs[-1].weight,
                       s1['projector.convs.2.weight'])


def test_predict_whole_and_slide():
    model = build(1).eval()
    data = model.data_preprocessor(batch(1, size=96), False)
    with torch.no_grad():
        out = model.predict(data['inputs'], data['data_samples'])[0]
    assert out.pred_sem_seg.shape == (96, 96)
    inst = out.pred_instance_map.data[0].numpy()
    fg = out.pred_sem_seg.data[0].numpy() > 0
    assert np.array_equal(inst > 0, fg)  # components of the foreground
    model.test_cfg = dict(mode='slide', crop_size=(64, 64), stride=(32, 32))
    data = model.data_preprocessor(batch(1, size=100), False)
    with torch.no_grad():
        logits = model.inference(data['inputs'])
    assert logits.shape == (1, 2, 100, 100)
    # a window-sized image gives the same logits in both modes
    data = model.data_preprocessor(batch(1, size=64), False)
    with torch.no_grad():
        slide = model.inference(data['inputs'])
        model.test_cfg = dict(mode='whole')
        whole = model.inference(data['inputs'])
    assert torch.allclose(slide, whole, atol=1e-5)


def test_non_square_images_crop_the_sam_padding():
    model = build(1).eval()
    grey = torch.rand(1, 1, 64, 128) * 255
    x, valid = model.data_preprocessor.sam_input(grey)
    assert x.shape == (1, 3, SIZE, SIZE) and valid == (32, 64)
    assert torch.all(x[..., 32:, :] == 0)  # zero padding (normalised)
    assert model.sam_features(grey).shape == (1, 6, 2, 4)
    with torch.no_grad():
        assert model.inference(grey).shape == (1, 2, 64, 128)


def test_data_preprocessor_grey_and_normalisation():
    model = build(1)
    pre = model.data_preprocessor
    g = torch.randint(0, 256, (1, 1, 8, 8), dtype=torch.uint8)
    rgb = g.repeat(1, 3, 1, 1)
    assert torch.equal(pre.to_grey(rgb), g.float())  # exact for grey
    colour = torch.zeros(1, 3, 2, 2, dtype=torch.uint8)
    colour[:, 0] = 100
    assert torch.allclose(pre.to_grey(colour), torch.full((1, 1, 2, 2),
                                                          29.9))
    rgba = torch.cat([rgb, torch.full_like(g, 255)], 1)
    assert torch.equal(pre.to_grey(rgba), g.float())
    z = pre.unet_input(g.float())
    assert abs(float(z.mean())) < 1e-5 and abs(float(z.std(
        correction=0)) - 1) < 1e-4
    x, valid = pre.sam_input(g.float())
    assert valid == (SIZE, SIZE) and x.shape == (1, 3, SIZE, SIZE)
    mean = torch.tensor([123.675, 116.28, 103.53]).view(1, 3, 1, 1)
    std = torch.tensor([58.395, 57.12, 57.375]).view(1, 3, 1, 1)
    same = pre.sam_input(torch.full((1, 1, SIZE, SIZE), 100.))[0]
    assert torch.allclose(same, ((100 - mean) / std).expand_as(same))
    with pytest.raises(ValueError, match='differ in size'):
        pre(dict(inputs=[rgb[0], rgb[0, :, :4]]), False)
    with pytest.raises(ValueError, match='1, 3 or 4 channels'):
        pre.to_grey(torch.zeros(1, 2, 4, 4))


def test_perceptual_gradient_flows_only_into_the_projector():
    model = build(2)
    model.train()
    data = model.data_preprocessor(batch(2, domains=[0, 1]), True)
    losses = model.loss(data['inputs'], data['data_samples'])
    (losses['loss_feat'] + losses['loss_style']).backward()
    for n, p in model.named_parameters():
        if n.startswith('projector'):
            assert p.grad is not None, n
        else:
            assert p.grad is None, n
    grads = [p.grad.abs().sum() for p in model.projector.parameters()]
    assert sum(grads) > 0


def test_deepcopy_keeps_freezing():
    model = build(2)
    clone = copy.deepcopy(model)
    assert [p.requires_grad for p in clone.parameters()] == [
        p.requires_grad for p in model.parameters()]
