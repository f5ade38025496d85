"""PDAM on a tiny mmdet Mask R-CNN: mmdet parts, losses, GRL, bad input."""
import copy
import math

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData

from nucseg.datasets.transforms import instance_boxes_and_masks
from nucseg.models.detectors import paint_instance_map
from nucseg.structures import NucleiDataSample

CONFIG = 'configs/cyc_pdam/pdam_tiny-r18_1xb1+1-20it_synth-fluo-to-he-64.py'
SIZE = 64


@pytest.fixture(autouse=True)
def _one_thread():
    """One intra-op thread: on 2 shared cores, 2 OpenMP threads per
    process are many times slower when the cores are busy."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope='module')
def model_cfg(repo_root):
    return Config.fromfile(str(repo_root / CONFIG)).model


def _build(model_cfg, **overrides):
    from nucseg.registry import MODELS
    init_default_scope('nucseg')
    cfg = copy.deepcopy(model_cfg)
    cfg.update(overrides)
    torch.manual_seed(0)
    return MODELS.build(cfg)


def _image(seed, nuclei):
    rng = np.random.default_rng(seed)
    img = np.full((SIZE, SIZE, 3), 225, np.uint8)
    inst = np.zeros((SIZE, SIZE), np.int64)
    yy, xx = np.mgrid[:SIZE, :SIZE]
    for k, (cy, cx) in enumerate(nuclei, 1):
        disk = (yy - cy)**2 + (xx - cx)**2 <= 25
        img[disk] = (90, 60, 140)
        inst[disk] = k
    img = np.clip(img + rng.normal(0, 4, img.shape), 0, 255).astype(np.uint8)
    return torch.from_numpy(img.transpose(2, 0, 1).copy()), inst


def _sample(inst, is_primary, targets=True):
    from mmdet.structures.mask import BitmapMasks
    from mmengine.structures import InstanceData
    s = NucleiDataSample()
    s.set_metainfo(dict(img_shape=(SIZE, SIZE), ori_shape=(SIZE, SIZE),
                        is_primary=is_primary,
                        domain='source' if is_primary else 'target'))
    s.gt_instance_map = PixelData(data=torch.from_numpy(inst)[None])
    if targets:
        boxes, masks, _ = instance_boxes_and_masks(inst)
        s.gt_instances = InstanceData(
            bboxes=torch.from_numpy(boxes),
            labels=torch.zeros(len(boxes), dtype=torch.long),
            masks=BitmapMasks(masks, SIZE, SIZE))
    return s


def _batch(src_nuclei=((16, 16), (16, 44), (44, 30)), with_target=True,
           with_source=True):
    inputs, samples = [], []
    if with_source:
        img, inst = _image(0, src_nuclei)
        inputs.append(img)
        samples.append(_sample(inst, True))
    if with_target:
        img, inst = _image(1, ((20, 40), (40, 20)))
        inputs.append(img)
        samples.append(_sample(inst, False, targets=False))
    return dict(inputs=inputs, data_samples=samples)


def _losses(model, data, seed=0):
    torch.manual_seed(seed)
    data = model.data_preprocessor(data, True)
    return model.loss(data['inputs'], data['data_samples'])


def test_submodules_are_mmdet_classes(model_cfg):
    import mmdet.models as mdm
    from mmdet.models.data_preprocessors import DetDataPreprocessor
    model = _build(model_cfg)
    assert type(model.backbone) is mdm.backbones.ResNet
    assert type(model.neck) is mdm.necks.FPN
    assert type(model.rpn_head) is mdm.dense_heads.RPNHead
    assert type(model.roi_head) is mdm.roi_heads.StandardRoIHead
    assert type(model.roi_head.bbox_head) is mdm.roi_heads.Shared2FCBBoxHead
    assert type(model.roi_head.mask_head) is mdm.roi_heads.FCNMaskHead
    assert type(model.semantic_head) is mdm.seg_heads.PanopticFPNHead
    assert type(model.data_preprocessor) is DetDataPreprocessor
    assert isinstance(model, mdm.detectors.MaskRCNN)
    gn = [m for m in model.backbone.modules()
          if isinstance(m, torch.nn.GroupNorm)]
    assert gn  # GroupNorm, not BatchNorm
    # the real config's parts: R-101, GN 32 groups, 1024-d box features
    real = Config.fromfile('configs/cyc_pdam/'
                           'pdam_r101-gn_1xb1+1-24k_bbbc039-to-kumar-256.py')
    assert real.model.backbone.depth == 101
    assert real.model.backbone.norm_cfg == dict(type='GN', num_groups=32,
                                                requires_grad=True)
    assert real.model.roi_head.bbox_head.fc_out_channels == 1024
    assert real.model.roi_head.mask_head.num_convs == 4


def test_loss_keys_weights_and_backward(model_cfg):
    model = _build(model_cfg)
    losses = _losses(model, _batch())
    for key in ('loss_da_img', 'loss_da_sem', 'loss_da_ins', 'loss_sem_seg',
                'loss_rpn_cls', 'loss_rpn_bbox', 'loss_cls', 'loss_bbox',
                'loss_mask'):
        assert key in losses, key
    total, log_vars = model.parse_losses(losses)
    assert torch.isfinite(total)
    for key in ('weight_img', 'weight_sem', 'weight_ins'):
        assert 0.0 < float(log_vars[key]) <= 2.0  # min(., beta = 2)
    total.backward()
    for name in ('img_discriminator', 'sem_discriminator',
                 'ins_discriminator', 'semantic_head', 'backbone'):
        grads = [p.grad for p in getattr(model, name).parameters()
                 if p.requires_grad]
        assert any(g is not None and g.abs().sum() > 0 for g in grads), name


def test_reweight_scales_task_losses(model_cfg):
    on = _build(model_cfg)
    off = _build(model_cfg, reweight=dict(enabled=False))
    a, b = _losses(on, _batch()), _losses(off, _batch())
    assert float(b['weight_img']) == float(b['weight_ins']) == 1.0
    w = float(a['weight_img'])
    assert float(a['loss_rpn_cls'][0] if isinstance(a['loss_rpn_cls'], list)
                 else a['loss_rpn_cls']) == pytest.approx(
        w * float(b['loss_rpn_cls'][0] if isinstance(
            b['loss_rpn_cls'], list) else b['loss_rpn_cls']), rel=1e-5)
    assert float(a['loss_sem_seg']) == pytest.approx(
        float(a['weight_sem']) * float(b['loss_sem_seg']), rel=1e-5)
    assert float(a['loss_mask']) == pytest.approx(
        float(a['weight_ins']) * float(b['loss_mask']), rel=1e-5)


def test_domain_gradients_are_reversed_and_scaled(model_cfg):
    """dL_da/d(backbone) = -alpha_da * (the plain gradient), per level;
    the discriminators themselves get the plain gradient."""
    model = _build(model_cfg)
    model.ins_discriminator.eval()  # no dropout: identical passes
    param = model.backbone.layer3[0].conv1.weight
    keys = ('loss_da_img', 'loss_da_sem', 'loss_da_ins')

    def grads(lambd):
        model.grl_lambda = lambd
        losses = _losses(model, _batch())
        out = {}
        for key in keys:
            disc = getattr(model, key.split('_')[2] + '_discriminator')
            out[key] = torch.autograd.grad(
                losses[key], [param, next(disc.parameters())],
                retain_graph=True)
        return out

    alpha = 0.3
    rev, plain = grads(alpha), grads(-1.0)  # grl(-1): no reversal
    for key in keys:
        (g_rev, d_rev), (g_plain, d_plain) = rev[key], plain[key]
        assert g_plain.abs().sum() > 0, key
        assert torch.allclose(g_rev, -alpha * g_plain, rtol=1e-3,
                              atol=1e-8), key
        assert torch.allclose(d_rev, d_plain, rtol=1e-4, atol=1e-9), key


def test_alpha_da_schedule_of_the_config(repo_root):
    from nucseg.engine.hooks import GRLLambdaHook
    cfg = Config.fromfile(
        str(repo_root / 'configs/cyc_pdam/'
            'pdam_r101-gn_1xb1+1-24k_bbbc039-to-kumar-256.py'))
    hook_cfg = [h for h in cfg.custom_hooks
                if h['type'] == 'GRLLambdaHook'][0]
    hook = GRLLambdaHook(**{k: v for k, v in hook_cfg.items()
                            if k != 'type'})
    assert hook.value(0, 24000) == 0.0
    assert hook.value(12000, 24000) == pytest.approx(
        2 / (1 + math.exp(-5)) - 1)
    assert hook.value(24000, 24000) == pytest.approx(
        2 / (1 + math.exp(-10)) - 1)


def test_alpha_da_on_the_losses_mode(model_cfg):
    model = _build(model_cfg, alpha_da_mode='loss')
    model.ins_discriminator.eval()
    model.grl_lambda = 1.0
    full = _losses(model, _batch())
    model.grl_lambda = 0.25
    part = _losses(model, _batch())
    for key in ('loss_da_img', 'loss_da_sem', 'loss_da_ins'):
        assert float(part[key]) == pytest.approx(0.25 * float(full[key]),
                                                 rel=1e-5)


def test_target_rois_from_detections(model_cfg):
    model = _build(model_cfg, target_rois='detections')
    losses = _losses(model, _batch())
    assert torch.isfinite(losses['loss_da_ins'])
    with pytest.raises(ValueError, match='target_rois'):
        _build(model_cfg, target_rois='gt')


def test_bad_batches(model_cfg):
    model = _build(model_cfg)
    with pytest.raises(ValueError, match='no source'):
        _losses(model, _batch(with_source=False))
    with pytest.raises(ValueError, match='no target'):
        _losses(model, _batch(with_target=False))
    data = _batch()
    del data['data_samples'][0].gt_instances
    with pytest.raises(KeyError, match='GenerateInstanceTargets'):
        _losses(model, data)
    # a source image without any annotated nucleus: finite losses
    losses = _losses(model, _batch(src_nuclei=()))
    total, _ = model.parse_losses(losses)
    assert torch.isfinite(total)
    assert 'loss_da_ins' not in losses  # no source RoI to align


def test_ablation_without_semantic_branch(model_cfg):
    model = _build(model_cfg, semantic_head=None, sem_discriminator=None)
    losses = _losses(model, _batch())
    assert 'loss_sem_seg' not in losses and 'loss_da_sem' not in losses
    with pytest.raises(ValueError, match='needs a semantic_head'):
        _build(model_cfg, semantic_head=None)
    with pytest.raises(TypeError, match='PDAM.reweight'):
        _build(model_cfg, reweight=dict(bta=2.0))


def test_predict_paints_instance_map(model_cfg):
    model = _build(model_cfg).eval()
    data = model.data_preprocessor(_batch(with_target=False), False)
    with torch.no_grad():
        out = model.predict(data['inputs'], data['data_samples'])
    inst = out[0].pred_instance_map.data
    assert inst.shape == (1, SIZE, SIZE) and inst.dtype == torch.int64
    assert 'pred_instances' in out[0]


def test_paint_instance_map_order_and_overlap():
    masks = torch.zeros(4, 8, 8, dtype=torch.bool)
    masks[0, :4, :4] = True          # score 0.6
    masks[1, 2:6, 2:6] = True        # score 0.9: painted first
    masks[2, 2:5, 2:5] = True        # inside mask 1 (> 0.7 covered): gone
    masks[3, 6:, 6:] = True          # below the score threshold
    scores = torch.tensor([0.6, 0.9, 0.8, 0.3])
    label = paint_instance_map(masks, scores, score_thr=0.5,
                               max_overlap=0.7)
    assert label[3, 3] == 1          # highest score owns the overlap
    assert label[0, 0] == 2 and label[7, 7] == 0
    assert set(label.unique().tolist()) == {0, 1, 2}
