"""CyC-PDAM configs pinned to the paper (Sec. 3.5, 4.2, Tables 3-4)."""
import pytest
from mmengine.config import Config

ROOT = 'configs/cyc_pdam/'
KUMAR = ROOT + 'pdam_r101-gn_1xb1+1-24k_bbbc039-to-kumar-256.py'


def _cfg(repo_root, name):
    return Config.fromfile(str(repo_root / ROOT / name))


@pytest.mark.parametrize('name,target', [
    ('cyclegan_resnet-9b_1xb1-40k_bbbc039-to-kumar-256.py', 'data/kumar'),
    ('cyclegan_resnet-9b_1xb1-40k_bbbc039-to-tnbc-256.py', 'data/tnbc'),
])
def test_cyclegan_configs(repo_root, name, target):
    cfg = _cfg(repo_root, name)
    m = cfg.model
    assert m.type == 'CycleGAN' and m.generator.num_blocks == 9
    assert m.discriminator.num_convs == 3  # 70x70 PatchGAN
    assert m.loss_weights == dict(cycle=10.0, identity=0.5)
    assert m.pool_size == 50
    assert cfg.model_wrapper_cfg.type == 'MMSeparateDistributedDataParallel'
    ow = cfg.optim_wrapper
    assert ow.constructor == 'MultiOptimWrapperConstructor'
    n = cfg.train_cfg.max_iters
    for key in ('generators', 'discriminators'):
        assert ow[key].optimizer.lr == 1e-4  # Sec. 3.5
        (sched, ) = cfg.param_scheduler[key]
        assert (sched.type, sched.begin, sched.end, sched.end_factor) == (
            'LinearLR', n // 2, n, 0.0)  # constant, then linearly to 0
    ds = cfg.train_dataloader.dataset
    assert ds.domain_a.data_root == 'data/bbbc039'
    assert ds.domain_b.data_root == target
    assert ds.domain_a.pipeline[1].type == 'InvertIntensity'  # Sec. 4.2
    assert [t.type for t in cfg.translate_pipeline][0] == 'InvertIntensity'


def test_pdam_main_config(repo_root):
    cfg = _cfg(repo_root, KUMAR.split('/')[-1])
    m = cfg.model
    assert m.type == 'PDAM' and m.backbone.depth == 101
    gn = dict(type='GN', num_groups=32, requires_grad=True)
    assert m.backbone.norm_cfg == m.neck.norm_cfg == gn
    assert m.roi_head.mask_head.norm_cfg == m.semantic_head.norm_cfg == gn
    for part in ('backbone', 'neck', 'rpn_head', 'roi_head', 'semantic_head',
                 'data_preprocessor'):
        assert m[part]['_scope_'] == 'mmdet', part
    assert m.reweight == dict(enabled=True, beta=2.0, clamp=None,
                              both_channels=False)
    assert m.train_cfg.rcnn.sampler.num == 512
    assert m.train_cfg.rcnn.sampler.pos_fraction == 0.25
    opt = cfg.optim_wrapper.optimizer
    assert (opt.type, opt.lr, opt.momentum, opt.weight_decay) == (
        'SGD', 0.002, 0.9, 1e-3)
    warm, step = cfg.param_scheduler
    assert warm.type == 'LinearLR' and warm.end == 500
    n = cfg.train_cfg.max_iters
    assert step.milestones == [n * 3 // 4] and step.gamma == 0.1
    loader = cfg.train_dataloader
    assert loader.batch_size == 2 and loader.sampler.domain_ratio == [1, 1]
    src, tgt = loader.dataset.datasets
    assert src.data_root == 'data/bbbc039_to_kumar_inp'
    assert tgt.data_root == 'data/kumar' and not tgt.require_labels
    assert cfg.test_dataloader.dataset.data_root == 'data/kumar'
    hook = [h for h in cfg.custom_hooks if h.type == 'GRLLambdaHook'][0]
    assert hook.schedule == 'dann' and hook.gamma == 10.0


@pytest.mark.parametrize('suffix,check', [
    ('_wo-ni', lambda c: c.train_dataloader.dataset.datasets[0].data_root
     == 'data/bbbc039_to_kumar'),
    ('_wo-tr', lambda c: c.model.reweight.enabled is False),
    ('_wo-sem', lambda c: c.model.semantic_head is None
     and c.model.sem_discriminator is None),
])
def test_pdam_ablations_change_one_thing(repo_root, suffix, check):
    base = _cfg(repo_root, KUMAR.split('/')[-1])
    name = KUMAR.split('/')[-1].replace('.py', f'{suffix}.py')
    cfg = _cfg(repo_root, name)
    assert check(cfg) and not check(base)
    assert cfg.optim_wrapper == base.optim_wrapper
    assert cfg.test_dataloader == base.test_dataloader


def test_pdam_tnbc_config(repo_root):
    cfg = _cfg(repo_root, 'pdam_r101-gn_1xb1+1-24k_bbbc039-to-tnbc-256.py')
    src, tgt = cfg.train_dataloader.dataset.datasets
    assert src.data_root == 'data/bbbc039_to_tnbc_inp'
    assert tgt.data_root == 'data/tnbc'
    assert cfg.val_dataloader.dataset.data_root == src.data_root
    assert cfg.test_dataloader.dataset.data_root == 'data/tnbc'
