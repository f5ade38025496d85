"""Every paper config is pinned to the table row it reproduces.

A config that builds is not necessarily the paper's: an inheritance slip
(a SAM config quietly running the weight-free recipe, an ablation losing
its alignment) still builds. These tests read the merged configs and
assert the settings that define each row -- no model is built, so they
are fast.
"""
from pathlib import Path

import pytest
from mmengine.config import Config

REPO = Path(__file__).resolve().parents[2]
AMA = REPO / 'configs' / 'ama_sam'
SPROUT = REPO / 'configs' / 'sprout'

# --------------------------------------------------------------------------
# AMA-SAM (Tables 1-4)
# config stem -> (primary, training domains in order, alignment, decoder,
#                 paper row)
AMA_ROWS = {
    'ama-sam_vit-b_hr-cgrl_1xb2-30e_monuseg+tnbc+cryonuseg+cpm17-1024':
    ('monuseg', ['monuseg', 'tnbc', 'cryonuseg', 'cpm17'], 'cgrl', 'hr',
     'Table 1 M-dagger + T + C + CP; Tables 2-4 last row'),
    'ama-sam_vit-b_hr-cgrl_1xb2-30e_tnbc+monuseg+cryonuseg+cpm17-1024':
    ('tnbc', ['tnbc', 'monuseg', 'cryonuseg', 'cpm17'], 'cgrl', 'hr',
     'Table 1 T-dagger + M + C + CP'),
    'ama-sam_vit-b_hr_1xb2-30e_monuseg-1024':
    ('monuseg', ['monuseg'], 'none', 'hr', 'Table 1 M-dagger'),
    'ama-sam_vit-b_hr_1xb2-30e_tnbc-1024':
    ('tnbc', ['tnbc'], 'none', 'hr', 'Table 1 T-dagger'),
    'ama-sam_vit-b_hr-noalign_1xb2-30e_monuseg+tnbc+cryonuseg+cpm17-1024':
    ('monuseg', ['monuseg', 'tnbc', 'cryonuseg', 'cpm17'], 'none', 'hr',
     'Table 2 row 2'),
    'ama-sam_vit-b_hr-grl_1xb2-30e_monuseg+tnbc+cryonuseg+cpm17-1024':
    ('monuseg', ['monuseg', 'tnbc', 'cryonuseg', 'cpm17'], 'grl', 'hr',
     'Table 2 row 3'),
    'ama-sam_vit-b_samdec-cgrl_1xb2-30e_monuseg+tnbc+cryonuseg+cpm17-1024':
    ('monuseg', ['monuseg', 'tnbc', 'cryonuseg', 'cpm17'], 'cgrl', 'sam',
     'Table 3 row 1'),
    'ama-sam_vit-b_hr-cgrl_1xb2-30e_monuseg+tnbc-1024':
    ('monuseg', ['monuseg', 'tnbc'], 'cgrl', 'hr', 'Table 4 row 2'),
    'ama-sam_vit-b_hr-cgrl_1xb2-30e_monuseg+tnbc+cryonuseg-1024':
    ('monuseg', ['monuseg', 'tnbc', 'cryonuseg'], 'cgrl', 'hr',
     'Table 4 row 3'),
}
# Training images of each data set (Sec. 3.6; TNBC: the default 40-image
# split of the configs), for the inverse-count learning rate (Sec. 3.5).
TRAIN_IMAGES = dict(monuseg=30, tnbc=40, cryonuseg=30, cpm17=64)
ALL_IMAGES = dict(monuseg=44, tnbc=50, cryonuseg=30, cpm17=64)


def _cfg(path: Path) -> Config:
    return Config.fromfile(str(path))


def test_every_ama_sam_paper_config_is_pinned():
    found = {p.stem for p in AMA.glob('ama-sam_vit-b_*.py')}
    assert found == set(AMA_ROWS), found ^ set(AMA_ROWS)


@pytest.mark.parametrize('stem', sorted(AMA_ROWS))
def test_ama_sam_table_row(stem):
    primary, domains, alignment, decoder, row = AMA_ROWS[stem]
    cfg = _cfg(AMA / f'{stem}.py')
    model = cfg.model
    train = cfg.train_dataloader.dataset
    assert train.type == 'MultiDomainDataset', row
    assert train.primary == primary, row
    assert [d.domain for d in train.datasets] == domains, row
    # The primary set trains on its training split; auxiliary sets are
    # used whole.
    for d in train.datasets:
        assert d.split == ('train' if d.domain == primary else None), row
    assert cfg.test_dataloader.dataset.domain == primary
    assert cfg.test_dataloader.dataset.split == 'test'
    # Eq. 6 and the CGRL / GRL / none ablation.
    assert model.alignment == alignment, row
    assert (model.alpha, model.beta) == (1.0, 1.0)
    if alignment == 'none':
        assert model.discriminator is None and model.loss_align is None
    else:
        assert model.discriminator.type == 'DomainDiscriminator'
        assert model.loss_align.type == 'CGRLLoss'
        # Eq. 3: the two-weight form from the data set sizes.
        assert model.loss_align.get('weighting', 'main_aux') == 'main_aux'
        assert 'w_main' not in model.loss_align
        hooks = [h.type for h in cfg.custom_hooks]
        assert 'DomainSizesHook' in hooks and 'GRLLambdaHook' in hooks
    # Frozen SAM ViT-B with UN-SAM adapters, SPGen, the decoder of the row.
    assert model.backbone.type == 'SAMImageEncoder'
    assert model.backbone.arch == 'vit_b' and model.backbone.frozen
    assert model.backbone.adapter.bottleneck == 192
    assert model.prompter.type == 'SPGen'
    head = model.decode_head
    if decoder == 'hr':
        assert head.type == 'HRDecoderHead' and head.num_slices == 16
    else:
        # Table 3 baseline with a trainable decoder (README assumptions).
        assert head.type == 'SAMMaskDecoderHead'
        assert head.train_mask_decoder is True
    assert model.loss_fine.type == 'DiceFocalLoss'
    # Sec. 3.5: Adam, lr 2e-4 for 40 images scaled inversely with the
    # training images, ExponentialLR 0.98, 30 epochs.
    images = sum(
        TRAIN_IMAGES[d] if d == primary else ALL_IMAGES[d] for d in domains)
    assert cfg.optim_wrapper.optimizer.type == 'Adam'
    assert cfg.optim_wrapper.optimizer.lr == pytest.approx(
        2e-4 * 40 / images), row
    sched = cfg.param_scheduler[0]
    assert sched.type == 'ExponentialLR' and sched.gamma == 0.98
    assert cfg.train_cfg.max_epochs == 30
    # Sec. 3.6 metrics: semantic ones on the raw prediction.
    metrics = {m.type: m for m in cfg.test_evaluator}
    assert set(metrics) == {'InstanceMetric', 'SemanticMetric'}
    assert metrics['SemanticMetric'].get('pred_source',
                                         'sem_seg') == 'sem_seg'


# --------------------------------------------------------------------------
# SPROUT
SPROUT_SAM = {
    'sprout_sam_vit_l': ('monuseg', 1024),
    'sprout_sam_vit_l_cpm17-512': ('cpm17', 512),
    'sprout_sam_vit_l_tnbc-512': ('tnbc', 512),
}
SPROUT_FREE = {
    'sprout_weightfree': ('monuseg', 1024),
    'sprout_weightfree_cpm17-512': ('cpm17', 512),
    'sprout_weightfree_tnbc-512': ('tnbc', 512),
}
# Alg. 3 with the official code's settings (App. D.3, NMS.py).
PAPER_NMS = dict(type='ContainmentAwareSoftNMS', sam_weight=0.7,
                 h_weight=0.3, containment_thresh=0.9, penalty=0.5,
                 sigma=0.5, score_thresh=0.5, iou_type='mask',
                 contained_score_thresh=0.5, threshold_mode='official')


#: Inference presets of the weight-free recipe (issue 13).
SPROUT_PRESETS = ('sprout_weightfree_slide', )


def test_every_sprout_config_is_pinned():
    found = {p.stem for p in SPROUT.glob('*.py')}
    assert found == set(SPROUT_SAM) | set(SPROUT_FREE) | set(SPROUT_PRESETS)


def test_sprout_slide_preset_departs_only_in_the_scan():
    """The slide preset is the full weight-free recipe with one POT-Scan
    step and no CRF (and looser one-step solver settings), nothing else."""
    full = _cfg(SPROUT / 'sprout_weightfree.py')
    slide = _cfg(SPROUT / 'sprout_weightfree_slide.py')
    assert slide.model.crf is None and full.model.crf is not None
    ps = slide.model.pot_scan
    assert ps.rho_max == ps.rho0 == 0.6 and ps.expand_steps == 0
    assert (ps.kmeans_iters, ps.tol, ps.ot_dtype) == (20, 1e-4, 'float32')
    for key in ('extractor', 'priors', 'activation', 'fg_prior', 'cleanup',
                'points', 'mask_generator', 'nms'):
        assert slide.model[key] == full.model[key], key
    assert slide.infer_cfg == full.infer_cfg
    assert slide.infer_cfg.mpp == 0.25


def _check_data(cfg, data, size):
    ds = cfg.test_dataloader.dataset
    assert ds.data_root == f'data/{data}' and ds.split == 'test'
    resize = [t for t in ds.pipeline if t.type == 'Resize'][0]
    assert tuple(resize.scale) == (size, size)
    assert resize.interpolation == 'lanczos'


@pytest.mark.parametrize('stem', sorted(SPROUT_SAM))
def test_sprout_sam_configs_run_the_paper_pipeline(stem):
    data, size = SPROUT_SAM[stem]
    cfg = _cfg(SPROUT / f'{stem}.py')
    _check_data(cfg, data, size)
    m = cfg.model
    # Sec. 3.1: fixed Ruifrok matrix, Otsu, top 60 % references.
    assert m.priors == dict(top_t=0.6, stain_matrix=None, smooth_sigma=0.0,
                            h_sigma=0.0)
    # Features: frozen encoder on 128 px tiles, stride 64; the folded
    # attention keeps 16 ViT-L tiles within a 24 GB card.
    ext = m.extractor
    assert (ext.type, ext.tile, ext.tile_stride) == ('TiledExtractor', 128,
                                                     64)
    assert ext.backbone.type == 'SAMExtractor'
    assert ext.backbone.attn_impl == 'sdpa_fold'
    # Sec. 3.2 / official get_points + is_mask_valid.
    ps = m.pot_scan
    assert (ps.k, ps.rho0, ps.step, ps.eps, ps.lambd) == (3, 0.6, 0.05, 0.1,
                                                          1.0)
    assert (ps.max_component_area, ps.max_merged_regions,
            ps.merge_top_n) == (20000, 5, 3)
    assert (ps.merge_rule, ps.cover_ratio) == ('gated', 0.95)
    assert ps.expand_steps == 2
    assert m.activation == dict(slack_to_bg=True)
    crf = m.crf
    assert (crf.iters, crf.gaussian_sxy, crf.gaussian_compat,
            crf.bilateral_sxy, crf.bilateral_srgb,
            crf.bilateral_compat) == (10, 1, 3, 67, 3, 4)
    assert crf.scale == 1.0
    assert m.fg_prior is False
    assert m.cleanup == dict(hole_area=40, min_area=30, nucleus_hole_area=0,
                             max_clump_area=0)
    # Points: watershed centroids (reference + scan), merged within 10 px.
    pts = m.points
    assert pts.method == 'watershed'
    assert (pts.min_distance, pts.merge_distance, pts.neg_grid) == (5, 10.0,
                                                                    24)
    # SAM mask stage: 512 px patches, overlap 0.5, 1 + 2 prompts.
    gen = m.mask_generator
    assert gen.type == 'SAMPointMaskGenerator' and gen.arch == 'vit_l'
    assert (gen.patch_size, gen.overlap, gen.num_neg) == (512, 0.5, 2)
    assert (gen.min_area, gen.max_area, gen.merge_iou) == (50, 20000, 0.8)
    assert gen.smooth_radius == 2
    assert (gen.border_margin, gen.max_neg_inside) == (5, 3)
    # Alg. 3 on every patch, then on the whole image.
    assert dict(gen.patch_nms) == PAPER_NMS
    assert m.nms is not None and dict(m.nms) == PAPER_NMS


@pytest.mark.parametrize('stem', sorted(SPROUT_FREE))
def test_sprout_weightfree_recipe_is_its_own(stem):
    """The weight-free recipe keeps its documented departures (and needs
    no download)."""
    data, size = SPROUT_FREE[stem]
    cfg = _cfg(SPROUT / f'{stem}.py')
    _check_data(cfg, data, size)
    m = cfg.model
    assert m.extractor.type == 'FilterBankExtractor'
    assert m.mask_generator.type == 'WatershedMaskGenerator'
    assert m.nms is None
    assert m.points.method == 'distance_maxima'
    assert m.priors.stain_matrix == 'macenko'
    assert m.crf.scale == 0.5
