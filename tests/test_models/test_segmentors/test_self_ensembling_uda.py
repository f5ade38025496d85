"""Self-ensembling UDA: losses, update order, gradient paths, CRF, predict.

Tiny parts (4-channel U-Nets, 32 px images) and one intra-op thread.
"""
import math

import numpy as np
import pytest
import torch
from mmengine.logging import MessageHub
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData

from nucseg.engine.optimizers import MultiOptimWrapperConstructor
from nucseg.models.losses.self_ensembling import (apply_dihedral,
                                                  binary_entropy_loss,
                                                  consistency_loss, dihedral,
                                                  sample_dihedral_ops)
from nucseg.registry import MODELS
from nucseg.structures import NucleiDataSample

SIZE = 32
OPTIM = dict(
    segmenter=dict(optimizer=dict(type='Adam', lr=1e-3)),
    discriminator=dict(optimizer=dict(type='Adam', lr=1e-3)),
    reconstructor=dict(optimizer=dict(type='Adam', lr=1e-3)))
PAPER_CRF = dict(
    type='DenseCRF', iters=5, gaussian_sxy=3.0, gaussian_compat=3.0,
    bilateral_sxy=80.0, bilateral_srgb=13.0, bilateral_compat=10.0)


@pytest.fixture(autouse=True)
def _setup(torch_one_thread):
    from nucseg.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    init_default_scope('nucseg')
    MessageHub.get_current_instance().update_info('iter', 0)


def _unet(in_channels, norm=True):
    return dict(
        type='UNet', in_channels=in_channels, base_channels=4,
        num_stages=3, strides=(1, 1, 1), enc_num_convs=(1, 1, 1),
        dec_num_convs=(1, 1), downsamples=(True, True),
        enc_dilations=(1, 1, 1), dec_dilations=(1, 1),
        norm_cfg=dict(type='BN') if norm else None,
        upsample_cfg=dict(type='InterpConv'))


def _model(norm=True, segmenter=None, **kwargs):
    torch.manual_seed(0)
    cfg = dict(
        type='SelfEnsemblingUDA',
        segmenter=segmenter or dict(type='PixelUNet',
                                    backbone=_unet(3, norm),
                                    out_channels=1),
        discriminator=dict(type='OutputSpaceDiscriminator',
                           base_channels=4),
        reconstructor=dict(type='PixelUNet', backbone=_unet(1, norm),
                           out_channels=3))
    cfg.update(kwargs)
    model = MODELS.build(cfg)
    model.consistency_weight = 1.0
    return model


def _wrappers(model):
    return MultiOptimWrapperConstructor(
        {k: dict(v) for k, v in OPTIM.items()})(model)


def _batch(n_src=2, n_tgt=2, size=SIZE, background=False, seed=0):
    g = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for i in range(n_src + n_tgt):
        inputs.append(torch.randint(0, 256, (3, size, size), generator=g,
                                    dtype=torch.uint8))
        sample = NucleiDataSample()
        sample.set_metainfo(dict(is_primary=i < n_src,
                                 img_shape=(size, size),
                                 ori_shape=(size, size)))
        if i < n_src:
            gt = torch.zeros(1, size, size, dtype=torch.long)
            if not background:
                gt[:, 8:20, 6:18] = 1
            sample.gt_sem_seg = PixelData(data=gt)
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def _params(module):
    return {k: v.detach().clone() for k, v in module.named_parameters()}


def _same(a, b):
    return all(torch.equal(a[k], b[k]) for k in a)


def _preprocessed(model, batch):
    data = model.data_preprocessor(batch, True)
    src, tgt = model.split_domains(data['data_samples'])
    return data['inputs'][src], data['inputs'][tgt], model.source_targets(
        data['data_samples'], src)


# ---------------------------------------------------------------- losses
def test_entropy_and_dihedral_helpers():
    assert binary_entropy_loss(torch.full((4, 4), 0.5)).item() == \
        pytest.approx(math.log(2), abs=1e-6)
    assert binary_entropy_loss(torch.tensor([0.0, 1.0])).item() < 1e-4
    x = torch.arange(12.).reshape(1, 1, 3, 4)
    assert dihedral(x, 'rot90').shape == (1, 1, 4, 3)
    for op, inv in (('rot90', 'rot270'), ('rot180', 'rot180'),
                    ('hflip', 'hflip'), ('vflip', 'vflip')):
        assert torch.equal(dihedral(dihedral(x, op), inv), x)
    torch.manual_seed(0)
    ops = sample_dihedral_ops(200, square=False)
    assert set(ops) == {'rot180', 'hflip', 'vflip'}
    assert set(sample_dihedral_ops(200, square=True)) == {
        'rot90', 'rot180', 'rot270', 'hflip', 'vflip'}
    with pytest.raises(ValueError, match='subset'):
        sample_dihedral_ops(1, True, ('rot45', ))
    with pytest.raises(ValueError, match='non-square'):
        sample_dihedral_ops(1, False, ('rot90', ))


def test_consistency_loss_detaches_the_teacher():
    teacher = torch.rand(2, 1, 8, 8, requires_grad=True)
    student = torch.rand(2, 1, 8, 8, requires_grad=True)
    ops = ['rot90', 'hflip']
    loss = consistency_loss(student, teacher, ops)
    expected = (student - apply_dihedral(teacher, ops)).pow(2).mean()
    assert loss.item() == pytest.approx(expected.item())
    loss.backward()
    assert teacher.grad is None
    assert student.grad is not None and student.grad.abs().sum() > 0


@pytest.mark.parametrize('kernel', [1, 3])
def test_consistency_zero_only_for_a_rotation_equivariant_segmenter(kernel):
    """A 1x1 conv commutes with rotations and flips: L_mse is exactly 0;
    a 3x3 conv with random weights does not."""
    model = _model(segmenter=dict(type='Conv2d', in_channels=3,
                                  out_channels=1, kernel_size=kernel,
                                  padding=kernel // 2))
    x_s, x_t, y_s = _preprocessed(model, _batch())
    pred = model.forward_segmenter(model.segmenter, x_s, x_t, True)
    assert len(pred['ops']) == 4  # source and target images
    loss = consistency_loss(pred['student'], pred['teacher'], pred['ops'])
    if kernel == 1:
        assert loss.item() == 0.0
    else:
        assert loss.item() > 1e-6
    losses = model.segmenter_losses(pred, y_s, x_t, 0.5)
    assert losses['loss_consistency'].item() == pytest.approx(
        0.5 * loss.item())


def test_teacher_branch_gets_no_gradient():
    """S's gradient from L_mse equals the one with an explicitly detached
    teacher S(x) (and differs from letting gradients through it)."""
    model = _model(segmenter=dict(type='Conv2d', in_channels=3,
                                  out_channels=1, kernel_size=3, padding=1),
                   consistency_domains=('target', ))
    x_s, x_t, y_s = _preprocessed(model, _batch())
    torch.manual_seed(1)
    pred = model.forward_segmenter(model.segmenter, x_s, x_t, True)
    loss = model.segmenter_losses(pred, y_s, x_t, 1.0)['loss_consistency']
    conv = model.segmenter
    got = torch.autograd.grad(loss, conv.weight)[0]

    def manual(detach):
        teacher = conv(x_t).sigmoid()
        if detach:
            teacher = teacher.detach()
        student = conv(apply_dihedral(x_t, pred['ops'])).sigmoid()
        target = apply_dihedral(teacher, pred['ops'])
        return torch.autograd.grad((student - target).pow(2).mean(),
                                   conv.weight)[0]

    torch.testing.assert_close(got, manual(True))
    assert not torch.allclose(got, manual(False))


# --------------------------------------------------------- gradient paths
def test_adversarial_gradient_reaches_segmenter_only_from_target():
    """L_adv (through the frozen D) flows into S and into the target
    images, not into the source images or D. (A norm-free S: BatchNorm's
    batch statistics would couple the images of a batch.)"""
    model = _model(norm=False)
    x_s, x_t, y_s = _preprocessed(model, _batch())
    x_s.requires_grad_(True)
    x_t.requires_grad_(True)
    pred = model.forward_segmenter(model.segmenter, x_s, x_t, False)
    loss = model.segmenter_losses(pred, y_s, x_t, 0.0)['loss_adv']
    loss.backward()
    assert x_s.grad is None or x_s.grad.abs().sum() == 0
    assert x_t.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.discriminator.parameters())
    assert all(p.requires_grad for p in model.discriminator.parameters())
    assert sum(p.grad.abs().sum() for p in model.segmenter.parameters()
               if p.grad is not None) > 0


def test_reconstructor_gradient_reaches_segmenter():
    model = _model()
    x_s, x_t, y_s = _preprocessed(model, _batch())
    pred = model.forward_segmenter(model.segmenter, x_s, x_t, False)
    losses = model.segmenter_losses(pred, y_s, x_t, 0.0)
    seg = list(model.segmenter.parameters())
    grads = torch.autograd.grad(losses['loss_recon'], seg,
                                allow_unused=True)
    assert sum(g.abs().sum() for g in grads if g is not None) > 0
    assert all(p.grad is None for p in model.reconstructor.parameters())
    # R's own step: its parameters only (S's prediction detached)
    rec = model.reconstructor_losses(pred['target'], x_t)
    rec['loss_reconstructor'].backward()
    assert all(p.grad is None for p in seg)
    assert sum(p.grad.abs().sum()
               for p in model.reconstructor.parameters()) > 0
    assert rec['loss_reconstructor'].item() == pytest.approx(
        losses['loss_recon'].item(), rel=1e-5)


# ---------------------------------------------------------- update order
def test_discriminator_step_leaves_segmenter_unchanged_and_vice_versa():
    # S every 2nd iteration: at iteration 0 only D and R step
    model = _model(step_intervals=dict(segmenter=2))
    wrappers = _wrappers(model)
    s0, d0, r0 = (_params(model.segmenter), _params(model.discriminator),
                  _params(model.reconstructor))
    logs = model.train_step(_batch(), wrappers)
    assert 'loss_segmenter' not in logs and 'loss_discriminator' in logs
    assert _same(s0, _params(model.segmenter))
    assert not _same(d0, _params(model.discriminator))
    assert not _same(r0, _params(model.reconstructor))
    # D and R every 2nd iteration: at iteration 0 only S steps
    model = _model(step_intervals=dict(discriminator=2, reconstructor=2))
    wrappers = _wrappers(model)
    s0, d0, r0 = (_params(model.segmenter), _params(model.discriminator),
                  _params(model.reconstructor))
    logs = model.train_step(_batch(), wrappers)
    assert set(logs) >= {'loss_segmenter', 'loss_dice', 'loss_adv',
                         'loss_recon'}
    assert 'loss_discriminator' not in logs
    assert not _same(s0, _params(model.segmenter))
    assert _same(d0, _params(model.discriminator))
    assert _same(r0, _params(model.reconstructor))


def test_train_step_all_losses_and_totals():
    model = _model()
    wrappers = _wrappers(model)
    logs = model.train_step(_batch(), wrappers)
    expected = {'loss_dis_source', 'loss_dis_target', 'loss_discriminator',
                'loss_dice', 'loss_em', 'loss_consistency', 'loss_adv',
                'loss_recon', 'loss_segmenter', 'loss_reconstructor',
                'loss'}
    assert set(logs) == expected
    assert all(torch.isfinite(v) for v in logs.values())
    assert logs['loss'].item() == pytest.approx(
        (logs['loss_segmenter'] + logs['loss_discriminator'] +
         logs['loss_reconstructor']).item(), rel=1e-5)
    assert logs['loss_segmenter'].item() == pytest.approx(
        sum(logs[k].item() for k in ('loss_dice', 'loss_em',
                                     'loss_consistency', 'loss_adv',
                                     'loss_recon')), rel=1e-5)


def test_ablations_and_source_only():
    # w/o EM, w/o self-ensembling: the terms disappear
    model = _model(loss_weights=dict(em=0.0), self_ensembling=False)
    model.consistency_weight = None  # not needed without self-ensembling
    logs = model.train_step(_batch(), _wrappers(model))
    assert 'loss_em' not in logs and 'loss_consistency' not in logs
    # source-only: no target term, D and R untouched
    model = _model(source_only=True)
    wrappers = _wrappers(model)
    d0, r0 = _params(model.discriminator), _params(model.reconstructor)
    logs = model.train_step(_batch(n_tgt=2), wrappers)
    assert set(logs) == {'loss_dice', 'loss_em', 'loss_consistency',
                         'loss_segmenter', 'loss'}
    assert _same(d0, _params(model.discriminator))
    assert _same(r0, _params(model.reconstructor))


def test_all_background_source_batch_keeps_finite_losses():
    model = _model()
    logs = model.train_step(_batch(background=True), _wrappers(model))
    assert all(torch.isfinite(v) for v in logs.values()), logs
    # the Dice term of an empty target is still defined (smoothing)
    assert 0.0 <= logs['loss_dice'].item() <= 1.0


def test_nan_loss_is_named_by_the_non_finite_loss_hook():
    """A NaN discriminator: the hook in default_runtime's custom_hooks
    stops at this iteration naming the NaN terms of the D and S steps
    (not the finite ones)."""
    from types import SimpleNamespace

    from nucseg.engine.hooks import NonFiniteLossError, NonFiniteLossHook
    model = _model()
    with torch.no_grad():
        model.discriminator.layers[0].weight.fill_(float('nan'))
    logs = model.train_step(_batch(), _wrappers(model))
    runner = SimpleNamespace(
        iter=6, message_hub=MessageHub.get_instance('selfens_nan'))
    with pytest.raises(NonFiniteLossError,
                       match='iteration 7: loss_dis_source=nan') as err:
        NonFiniteLossHook().after_train_iter(runner, 6, outputs=logs)
    message = str(err.value)
    for key in ('loss_dis_target=nan', 'loss_adv=nan',
                'loss_discriminator=nan', 'loss_segmenter=nan'):
        assert key in message
    for key in ('loss_dice=', 'loss_recon=', 'loss_em='):
        assert key not in message


def test_configuration_errors():
    model = _model()
    model.consistency_weight = None
    with pytest.raises(RuntimeError, match='ConsistencyRampHook'):
        model.train_step(_batch(), _wrappers(model))
    model.consistency_weight = 1.0
    with pytest.raises(ValueError, match='no target image'):
        model.train_step(_batch(n_tgt=0), _wrappers(model))
    with pytest.raises(ValueError, match='no source'):
        model.train_step(_batch(n_src=0), _wrappers(model))
    batch = _batch()
    del batch['data_samples'][0].gt_sem_seg
    with pytest.raises(KeyError, match='GenerateNucleiTarget'):
        model.train_step(batch, _wrappers(model))
    with pytest.raises(TypeError, match="'advv'"):
        _model(loss_weights=dict(advv=1.0))
    with pytest.raises(ValueError, match='finite'):
        _model(loss_weights=dict(adv=float('nan')))
    with pytest.raises(ValueError, match='entropy_domains'):
        _model(entropy_domains=('src', ))
    with pytest.raises(RuntimeError, match='train_step'):
        model(torch.zeros(1, 3, SIZE, SIZE), mode='loss')


# ---------------------------------------------------------------- predict
def test_predict_any_size_gives_semantic_and_instance_maps():
    model = _model(crf=PAPER_CRF)
    model.eval()
    inputs = torch.randint(0, 256, (1, 3, 36, 44), dtype=torch.uint8)
    sample = NucleiDataSample()
    sample.set_metainfo(dict(img_shape=(36, 44), ori_shape=(36, 44)))
    with torch.no_grad():
        data = model.data_preprocessor(dict(inputs=list(inputs),
                                            data_samples=[sample]))
        out = model(**data, mode='predict')[0]
    assert out.pred_sem_seg.data.shape == (1, 36, 44)
    assert out.pred_instance_map.data.shape == (1, 36, 44)
    prob = out.seg_logits.data
    assert prob.shape == (1, 36, 44) and 0 <= prob.min() <= prob.max() <= 1
    assert torch.equal(out.pred_sem_seg.data, (prob > 0.5).long())
    assert model(data['inputs']).shape == (1, 1, 36, 44)


def _disk_case():
    """White image with a dark purple disk, and a prediction that is the
    disk shifted by 3 px, blurred and noisy."""
    yy, xx = np.mgrid[:48, :48]
    disk = (yy - 24)**2 + (xx - 24)**2 <= 10**2
    image = np.full((48, 48, 3), 235, np.uint8)
    image[disk] = (90, 40, 130)
    shifted = np.roll(disk, 3, axis=1).astype(np.float32)
    rng = np.random.default_rng(0)
    prob = np.clip(0.15 + 0.7 * shifted + rng.normal(0, 0.15, disk.shape),
                   0.01, 0.99).astype(np.float32)
    return image, disk, prob


def _iou(a, b):
    return (a & b).sum() / (a | b).sum()


def test_crf_moves_a_noisy_prediction_toward_the_image_edges():
    image, disk, prob = _disk_case()
    model = _model(crf=PAPER_CRF)
    refined = model.refine(image, torch.from_numpy(prob)).numpy()
    before, after = _iou(prob > 0.5, disk), _iou(refined > 0.5, disk)
    assert after > before + 0.1, (before, after)
    # pixels of the disk's left rim the prediction missed are recovered
    rim = disk & ~np.roll(disk, 3, axis=1)
    assert (refined[rim] > 0.5).mean() > (prob[rim] > 0.5).mean() + 0.3
    # without a CRF the probabilities pass unchanged
    plain = _model()
    assert torch.equal(plain.refine(image, torch.from_numpy(prob)),
                       torch.from_numpy(prob))


def test_output_space_discriminator_and_pixel_unet_shapes():
    disc = MODELS.build(dict(type='OutputSpaceDiscriminator'))
    convs = [m for m in disc.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 128, 256, 512, 1]
    assert all(c.kernel_size == (4, 4) and c.stride == (2, 2)
               for c in convs)
    assert disc(torch.rand(2, 1, 64, 96)).shape == (2, 1, 2, 3)
    with pytest.raises(ValueError, match='at least 32'):
        disc(torch.rand(1, 1, 16, 64))
    with pytest.raises(ValueError, match='B x 1 x H x W'):
        disc(torch.rand(1, 3, 64, 64))
    net = MODELS.build(dict(type='PixelUNet', backbone=_unet(1),
                            out_channels=3))
    assert net.size_divisor == 4
    assert net(torch.rand(2, 1, 30, 18)).shape == (2, 3, 30, 18)
    with pytest.raises(ValueError, match='B x 1 x H x W'):
        net(torch.rand(2, 3, 32, 32))
