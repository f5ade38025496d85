"""The self-ensembling UDA configs carry the paper's settings (Sec. 3,
Table 1) and each ablation differs from its full config in one setting."""
from pathlib import Path

import pytest
from mmengine.config import Config

REPO = Path(__file__).resolve().parents[2]
FOLDER = REPO / 'configs' / 'selfens_uda'
DIRECTIONS = {
    'tnbc-to-kirc': ('data/tnbc', 'data/kirc', 40),
    'tnbc-to-tcia': ('data/tnbc', 'data/tcia_stad', 40),
    'tcia-to-kirc': ('data/tcia_stad', 'data/kirc', 77),
    'tcia-to-tnbc': ('data/tcia_stad', 'data/tnbc', 77),
}


def _cfg(name):
    return Config.fromfile(str(FOLDER / name))


def _full(direction):
    return f'selfens-uda_unet_1xb1+1-500e_{direction}-256.py'


def test_every_config_is_pinned():
    names = {p.name for p in FOLDER.glob('*.py')}
    expected = {_full(d) for d in DIRECTIONS}
    expected |= {_full(d)[:-3] + f'_{a}.py' for d in DIRECTIONS
                 for a in ('wo-crf', 'wo-em', 'wo-se')}
    expected.add('selfens-uda_unet-c16_1xb1+1-300it_synth-kumar-to-cryo-'
                 '128.py')
    assert names == expected


@pytest.mark.parametrize('direction', sorted(DIRECTIONS))
def test_paper_settings(direction):
    src, tgt, per_epoch = DIRECTIONS[direction]
    cfg = _cfg(_full(direction))
    model = cfg.model
    assert model.type == 'SelfEnsemblingUDA'
    assert model.segmenter.backbone.type == 'UNet'
    assert model.segmenter.backbone.in_channels == 3
    assert model.segmenter.out_channels == 1
    assert model.reconstructor.backbone.in_channels == 1
    assert model.reconstructor.out_channels == 3
    assert (model.discriminator.base_channels,
            model.discriminator.num_convs) == (64, 4)
    assert dict(model.loss_weights) == dict(em=1.0, adv=0.001, recon=0.01)
    assert model.self_ensembling and model.crf.type == 'DenseCRF'
    assert set(model.consistency_domains) == {'source', 'target'}
    assert tuple(model.entropy_domains) == ('source', )
    lrs = {k: cfg.optim_wrapper[k].optimizer.lr
           for k in ('segmenter', 'discriminator', 'reconstructor')}
    assert lrs == dict(segmenter=1e-4, discriminator=1e-3,
                       reconstructor=1e-3)
    assert all(cfg.optim_wrapper[k].optimizer.type == 'Adam' for k in lrs)
    assert cfg.optim_wrapper.constructor == 'MultiOptimWrapperConstructor'
    assert cfg.model_wrapper_cfg.type == 'MMSeparateDistributedDataParallel'
    assert cfg.train_cfg.max_iters == 500 * per_epoch
    ramp = [h for h in cfg.custom_hooks
            if h.type == 'ConsistencyRampHook']
    assert len(ramp) == 1
    assert (ramp[0].peak, ramp[0].scale,
            ramp[0].iters_per_epoch) == (30, 1.0, per_epoch)
    loader = cfg.train_dataloader
    assert loader.batch_size == 2
    assert list(loader.sampler.domain_ratio) == [1, 1]
    sets = loader.dataset.datasets
    assert (sets[0].data_root, sets[0].split) == (src, 'train')
    assert (sets[1].data_root, sets[1].split) == (tgt, 'train')
    assert sets[1].require_labels is False
    assert not any(t.type == 'LoadInstanceAnnotations'
                   for t in sets[1].pipeline)  # target labels never read
    assert cfg.val_dataloader.dataset.data_root == tgt
    assert (cfg.test_dataloader.dataset.data_root,
            cfg.test_dataloader.dataset.split) == (tgt, 'test')
    metrics = {m for e in cfg.test_evaluator for m in e.metrics}
    assert {'iou', 'dice', 'aji', 'pq'} <= metrics


@pytest.mark.parametrize('direction', sorted(DIRECTIONS))
def test_ablations_change_one_setting(direction):
    full = _cfg(_full(direction))
    no_crf = _cfg(_full(direction)[:-3] + '_wo-crf.py')
    no_em = _cfg(_full(direction)[:-3] + '_wo-em.py')
    no_se = _cfg(_full(direction)[:-3] + '_wo-se.py')
    assert no_crf.model.crf is None
    assert no_em.model.loss_weights.em == 0.0
    assert not no_se.model.self_ensembling
    assert not any(h.type == 'ConsistencyRampHook'
                   for h in no_se.custom_hooks)
    for cfg, key in ((no_crf, 'crf'), (no_em, 'loss_weights'),
                     (no_se, 'self_ensembling')):
        rest = {k: v for k, v in cfg.model.items() if k != key}
        assert rest == {k: v for k, v in full.model.items() if k != key}
        assert cfg.train_cfg == full.train_cfg
        assert cfg.train_dataloader == full.train_dataloader
