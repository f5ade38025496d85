"""CycleGAN: networks, pool, preprocessor, data set and train_step."""
import numpy as np
import pytest
import torch
from mmengine.logging import MessageHub
from mmengine.registry import init_default_scope

from nucseg.datasets.transforms import InvertIntensity
from nucseg.engine.optimizers import MultiOptimWrapperConstructor
from nucseg.models.translators import (CycleGAN, ImagePool,
                                       ResnetGenerator,
                                       UnpairedDataPreprocessor)

TINY = dict(
    generator=dict(type='ResnetGenerator', base_channels=4, num_blocks=1),
    discriminator=dict(type='PatchDiscriminator', base_channels=4,
                       num_convs=2),
    pool_size=2)
OPTIM = dict(
    generators=dict(optimizer=dict(type='Adam', lr=1e-3,
                                   betas=(0.5, 0.999))),
    discriminators=dict(optimizer=dict(type='Adam', lr=1e-3,
                                       betas=(0.5, 0.999))))


@pytest.fixture(autouse=True)
def _one_thread():
    """One intra-op thread: on 2 shared cores, 2 OpenMP threads per
    process are many times slower when the cores are busy."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _scope():
    init_default_scope('nucseg')


def _data(n=2, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return dict(
        inputs=dict(
            img_a=[torch.randint(0, 256, (3, size, size), generator=g,
                                 dtype=torch.uint8) for _ in range(n)],
            img_b=[torch.randint(0, 256, (3, size, size), generator=g,
                                 dtype=torch.uint8) for _ in range(n)]),
        data_samples=None)


def _state(module):
    return {k: v.clone() for k, v in module.state_dict().items()}


def _changed(a, b):
    return any(not torch.equal(a[k], b[k]) for k in a)


def test_generator_architecture_and_any_size():
    gen = ResnetGenerator()
    blocks = [m for m in gen.model if type(m).__name__ == '_ResidualBlock']
    assert len(blocks) == 9
    norms = [m for m in gen.modules()
             if isinstance(m, torch.nn.InstanceNorm2d)]
    assert norms and not any(m.affine for m in norms)
    assert isinstance(gen.model[0], torch.nn.ReflectionPad2d)
    tiny = ResnetGenerator(base_channels=4, num_blocks=1)
    for shape in ((1, 3, 32, 32), (2, 3, 30, 42)):
        out = tiny(torch.rand(shape) * 2 - 1)
        assert out.shape == shape and out.abs().max() <= 1.0
    with pytest.raises(ValueError, match='B x 3'):
        tiny(torch.rand(1, 1, 8, 8))


def test_image_pool():
    torch.manual_seed(0)
    pool = ImagePool(2)
    a = torch.zeros(2, 1, 2, 2)
    assert torch.equal(pool.query(a), a) and len(pool.images) == 2
    b = torch.ones(64, 1, 2, 2)
    out = pool.query(b)
    # once full, about half of the images come from the history
    from_pool = int((out.flatten(1).mean(1) == 0).sum())
    assert 0 < from_pool < 64 and len(pool.images) == 2
    assert torch.equal(ImagePool(0).query(b), b)
    with pytest.raises(ValueError):
        ImagePool(-1)


def test_preprocessor_round_trip_and_errors():
    pre = UnpairedDataPreprocessor()
    data = _data()
    out = pre(data, True)
    assert out['inputs']['img_a'].shape == (2, 3, 32, 32)
    assert out['inputs']['img_a'].min() >= -1 and \
        out['inputs']['img_a'].max() <= 1
    back = pre.to_uint8(out['inputs']['img_b'])
    assert np.array_equal(back[0], data['inputs']['img_b'][0].permute(
        1, 2, 0).numpy())
    bad = _data()
    bad['inputs']['img_a'][1] = torch.zeros(3, 16, 16, dtype=torch.uint8)
    with pytest.raises(ValueError, match='same size'):
        pre(bad)
    with pytest.raises(KeyError, match='img_b'):
        pre(dict(inputs=dict(img_a=data['inputs']['img_a'])))


def test_invert_intensity():
    img = np.array([[[0, 10, 255]]], np.uint8)
    out = InvertIntensity()(dict(img=img))['img']
    assert out.tolist() == [[[255, 245, 0]]] and out.dtype == np.uint8


def test_train_step_updates_generators_and_discriminators_separately():
    torch.manual_seed(0)
    model = CycleGAN(**TINY, step_intervals=dict(generators=2))
    wrappers = MultiOptimWrapperConstructor(dict(OPTIM))(model)
    ids = {k: {id(p) for g in w.optimizer.param_groups for p in g['params']}
           for k, w in wrappers.items()}
    assert ids['generators'] == {id(p) for p in model.generators.parameters()}
    assert ids['discriminators'] == {
        id(p) for p in model.discriminators.parameters()}
    hub = MessageHub.get_current_instance()
    g0, d0 = _state(model.generators), _state(model.discriminators)
    hub.update_info('iter', 0)  # discriminator step only
    logs = model.train_step(_data(), wrappers)
    assert not _changed(g0, _state(model.generators))
    assert _changed(d0, _state(model.discriminators))
    assert {'loss_d_a', 'loss_d_b', 'loss_discriminators'} <= set(logs)
    assert 'loss_generators' not in logs
    hub.update_info('iter', 1)  # generators, then discriminators
    d1 = _state(model.discriminators)
    logs = model.train_step(_data(seed=1), wrappers)
    assert _changed(g0, _state(model.generators))
    assert _changed(d1, _state(model.discriminators))
    for key in ('loss_gan_a2b', 'loss_gan_b2a', 'loss_cycle_a',
                'loss_cycle_b', 'loss_idt_a', 'loss_idt_b', 'loss'):
        assert key in logs and torch.isfinite(logs[key]), key
    # identity weight = 0.5 x cycle weight (10): 5 x L1
    assert set(model.last_outputs) == {'real_a', 'real_b', 'fake_a',
                                       'fake_b', 'rec_a', 'rec_b'}
    assert all(p.requires_grad for p in model.discriminators.parameters())


def test_loss_weights_and_forward_modes():
    model = CycleGAN(**TINY, loss_weights=dict(identity=0.0))
    wrappers = MultiOptimWrapperConstructor(dict(OPTIM))(model)
    MessageHub.get_current_instance().update_info('iter', 0)
    logs = model.train_step(_data(), wrappers)
    assert 'loss_idt_a' not in logs
    with pytest.raises(TypeError, match="'cycel' -> 'cycle'"):
        CycleGAN(**TINY, loss_weights=dict(cycel=1.0))
    pre = model.data_preprocessor(_data(n=1))
    out = model(pre['inputs'], mode='tensor')
    assert out['fake_b'].shape == out['fake_a'].shape == (1, 3, 32, 32)
    with pytest.raises(RuntimeError, match='train_step'):
        model(pre['inputs'], mode='loss')
    with pytest.raises(ValueError, match='direction'):
        model.translate(pre['inputs']['img_a'], 'x')


def test_unpaired_dataset_and_sample_grid(synthetic_domains, tmp_path):
    from nucseg.datasets.unpaired import UnpairedNucleiDataset
    from nucseg.engine.hooks.translation_samples_hook import \
        TranslationSamplesHook

    def pipe(invert):
        return [dict(type='LoadNucleiImageFromFile')] + (
            [dict(type='InvertIntensity')] if invert else []) + [
                dict(type='RandomInstanceCrop', crop_size=32),
                dict(type='PackNucleiInputs')]

    ds = UnpairedNucleiDataset(
        domain_a=dict(type='NucleiDataset',
                      data_root=synthetic_domains['fluo'], split=None,
                      require_labels=False, pipeline=pipe(True)),
        domain_b=dict(type='NucleiDataset',
                      data_root=synthetic_domains['he_kumar'], split=None,
                      require_labels=False, pipeline=pipe(False)),
        seed=0)
    assert len(ds) == 6
    item = ds[0]
    assert item['inputs']['img_a'].shape == (3, 32, 32)
    assert item['data_samples'].metainfo['img_path_b'].endswith('.png')
    # fluorescence (dark background) is inverted to a light background
    assert item['inputs']['img_a'].float().mean() > 127
    model = CycleGAN(**TINY)
    wrappers = MultiOptimWrapperConstructor(dict(OPTIM))(model)
    from mmengine.dataset import pseudo_collate
    model.train_step(pseudo_collate([ds[0], ds[1]]), wrappers)
    grid = TranslationSamplesHook(max_images=2).grid(model)
    assert grid.dtype == np.uint8 and grid.shape == (4 * 34, 3 * 34, 3)
