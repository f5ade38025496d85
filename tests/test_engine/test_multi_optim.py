"""Multi-optimizer machinery: constructor, MultiOptimModel, DDP, resume."""
import importlib.util
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp
from mmengine.config import Config
from mmengine.logging import MessageHub
from mmengine.optim import OptimWrapperDict
from mmengine.registry import init_default_scope

from nucseg.engine.optimizers import MultiOptimWrapperConstructor
from .multi_optim_toy import ToyMultiOptimGAN, toy_config

OPTIM = dict(
    generator=dict(optimizer=dict(type='Adam', lr=1e-2)),
    discriminator=dict(optimizer=dict(type='SGD', lr=1e-2)))


def _ids(module):
    return {id(p) for p in module.parameters()}


def _opt_ids(wrapper):
    return {id(p) for g in wrapper.optimizer.param_groups for p in g['params']}


def _snapshot(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _same(a, b):
    return all(torch.equal(a[k], b[k]) for k in a)


def _batch(seed=0, n=2):
    g = torch.Generator().manual_seed(seed)
    return dict(inputs=[torch.randn(4, generator=g) for _ in range(n)])


def _set_iter(it):
    MessageHub.get_current_instance().update_info('iter', it)


@pytest.fixture(autouse=True)
def _scope():
    init_default_scope('nucseg')


def test_constructor_gives_each_optimizer_its_own_params():
    torch.manual_seed(0)
    model = ToyMultiOptimGAN()
    wrappers = MultiOptimWrapperConstructor(dict(OPTIM))(model)
    assert isinstance(wrappers, OptimWrapperDict)
    assert set(wrappers.keys()) == {'generator', 'discriminator'}
    assert _opt_ids(wrappers['generator']) == _ids(model.generator)
    assert _opt_ids(wrappers['discriminator']) == _ids(model.discriminator)
    assert type(wrappers['generator'].optimizer).__name__ == 'Adam'
    assert type(wrappers['discriminator'].optimizer).__name__ == 'SGD'


def test_constructor_modules_list_and_paramwise_cfg():
    model = ToyMultiOptimGAN()
    cfg = dict(both=dict(
        modules=['generator', 'discriminator'],
        optimizer=dict(type='SGD', lr=0.1),
        paramwise_cfg=dict(custom_keys={'discriminator': dict(
            lr_mult=10.)})))
    wrapper = MultiOptimWrapperConstructor(cfg)(model)['both']
    lrs = {}
    for group in wrapper.optimizer.param_groups:
        for p in group['params']:
            lrs[id(p)] = group['lr']
    assert {lrs[i] for i in _ids(model.generator)} == {0.1}
    assert all(lrs[i] == pytest.approx(1.) for i in _ids(model.discriminator))


def test_constructor_errors():
    model = ToyMultiOptimGAN()
    with pytest.raises(KeyError, match="no sub-module 'gen'"):
        MultiOptimWrapperConstructor(
            dict(gen=dict(optimizer=dict(type='SGD', lr=1.))))(model)
    with pytest.raises(ValueError, match='two optimizers'):
        MultiOptimWrapperConstructor(
            dict(generator=dict(optimizer=dict(type='SGD', lr=1.)),
                 again=dict(modules='generator',
                            optimizer=dict(type='SGD', lr=1.))))(model)
    with pytest.raises(ValueError, match='inside each optimizer key'):
        MultiOptimWrapperConstructor(dict(OPTIM), paramwise_cfg=dict())
    with pytest.raises(ValueError, match='has no `optimizer`'):
        MultiOptimWrapperConstructor(dict(generator=dict(type='SGD')))
    with pytest.raises(TypeError, match='optim_wrapper.generator'):
        MultiOptimWrapperConstructor(dict(generator='SGD'))


def test_runner_builds_it_from_a_config_and_amp_switch(repo_root,
                                                       monkeypatch):
    """tools/train.py --amp turns every key into an AmpOptimWrapper."""
    spec = importlib.util.spec_from_file_location(
        'nucseg_train_tool', repo_root / 'tools' / 'train.py')
    train_tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train_tool)
    cfg = Config(dict(optim_wrapper=dict(
        constructor='MultiOptimWrapperConstructor', **OPTIM)))
    train_tool.enable_amp(cfg)
    assert cfg.optim_wrapper.generator.type == 'AmpOptimWrapper'
    assert cfg.optim_wrapper.discriminator.type == 'AmpOptimWrapper'
    assert cfg.optim_wrapper.constructor == 'MultiOptimWrapperConstructor'
    # AmpOptimWrapper refuses to build without an accelerator; pretend one
    # to check the constructor builds one AMP wrapper per key.
    import mmengine.optim.optimizer.amp_optimizer_wrapper as amp_mod
    monkeypatch.setattr(amp_mod, 'is_cuda_available', lambda: True)
    from mmengine.optim import AmpOptimWrapper, build_optim_wrapper
    with pytest.warns(UserWarning):  # GradScaler: CUDA is not available
        wrappers = build_optim_wrapper(ToyMultiOptimGAN(),
                                       cfg.optim_wrapper.to_dict())
    assert all(isinstance(w, AmpOptimWrapper) for w in wrappers.values())


def test_discriminator_step_leaves_generator_unchanged():
    torch.manual_seed(0)
    model = ToyMultiOptimGAN(step_intervals=dict(generator=2))
    wrappers = MultiOptimWrapperConstructor(dict(OPTIM))(model)
    g0, d0 = _snapshot(model.generator), _snapshot(model.discriminator)
    _set_iter(0)  # (0 + 1) % 2 != 0: discriminator only
    logs = model.train_step(_batch(), wrappers)
    assert 'loss_discriminator' in logs and 'loss_generator' not in logs
    assert torch.isfinite(logs['loss'])
    assert _same(g0, _snapshot(model.generator))
    assert not _same(d0, _snapshot(model.discriminator))
    # Iteration 1: both step.
    _set_iter(1)
    logs = model.train_step(_batch(1), wrappers)
    assert {'loss_generator', 'loss_discriminator', 'loss_g',
            'loss_d'} <= set(logs)
    assert not _same(g0, _snapshot(model.generator))
    assert logs['loss'] == pytest.approx(
        float(logs['loss_generator'] + logs['loss_discriminator']))


def test_generator_step_with_frozen_discriminator():
    torch.manual_seed(0)
    model = ToyMultiOptimGAN()
    wrappers = MultiOptimWrapperConstructor(dict(OPTIM))(model)
    d0 = _snapshot(model.discriminator)

    def losses():
        with model.frozen('discriminator') as disc:
            assert not any(p.requires_grad for p in disc.parameters())
            out = disc(model.generator(torch.ones(2, 4)))
        return dict(loss_g=out.pow(2).mean())

    g0 = _snapshot(model.generator)
    model.update(wrappers, 'generator', losses)
    assert all(p.requires_grad for p in model.discriminator.parameters())
    assert all(p.grad is None for p in model.discriminator.parameters())
    assert _same(d0, _snapshot(model.discriminator))
    assert not _same(g0, _snapshot(model.generator))


def test_frozen_restores_flags_after_an_error():
    model = ToyMultiOptimGAN()
    model.discriminator[0].weight.requires_grad_(False)
    with pytest.raises(RuntimeError):
        with model.frozen('discriminator', 'generator'):
            raise RuntimeError('boom')
    assert not model.discriminator[0].weight.requires_grad
    assert model.discriminator[0].bias.requires_grad
    assert all(p.requires_grad for p in model.generator.parameters())


def test_schedule_and_wrapper_checks():
    model = ToyMultiOptimGAN(step_intervals=dict(generator=3),
                             step_begins=dict(generator=4))
    steps = [model.should_step('generator', i) for i in range(12)]
    assert steps == [i >= 4 and (i + 1) % 3 == 0 for i in range(12)]
    assert all(model.should_step('discriminator', i) for i in range(5))
    with pytest.raises(ValueError, match='unknown optimizer'):
        ToyMultiOptimGAN(step_intervals=dict(gen=2))
    with pytest.raises(ValueError, match='>= 1'):
        ToyMultiOptimGAN(step_intervals=dict(generator=0))
    wrappers = MultiOptimWrapperConstructor(dict(OPTIM))(model)
    with pytest.raises(TypeError, match='MultiOptimWrapperConstructor'):
        model.train_step(_batch(), wrappers['generator'])
    with pytest.raises(KeyError, match="'discriminator'"):
        model.train_step(_batch(),
                         OptimWrapperDict(generator=wrappers['generator']))
    with pytest.raises(RuntimeError, match='MMSeparateDistributed'):
        model(torch.zeros(1, 4), mode='loss')


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _ddp_worker(rank, world, port, queue):
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank),
                      WORLD_SIZE=str(world), MASTER_ADDR='127.0.0.1',
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)  # forked: no OpenMP team of the parent
    from nucseg.registry import MODEL_WRAPPERS
    from nucseg.utils.dist import setup_cpu_distributed
    try:
        init_default_scope('nucseg')
        cfg = Config(dict(
            launcher='pytorch',
            model_wrapper_cfg=dict(type='MMSeparateDistributedDataParallel'),
            env_cfg=dict(dist_cfg=dict(backend='gloo'))))
        assert setup_cpu_distributed(cfg)
        wrapper_cfg = cfg.model_wrapper_cfg.to_dict()
        torch.manual_seed(0)  # same initial weights on both ranks
        model = ToyMultiOptimGAN(step_intervals=dict(generator=2))
        ddp = MODEL_WRAPPERS.build(wrapper_cfg, default_args=dict(
            module=model))
        wrappers = MultiOptimWrapperConstructor(dict(OPTIM))(ddp)
        for it in range(3):
            _set_iter(it)
            ddp.train_step(_batch(seed=10 * rank + it), wrappers)
        flat = torch.cat([p.detach().flatten()
                          for p in model.parameters()])
        gathered = [torch.zeros_like(flat) for _ in range(world)]
        torch.distributed.all_gather(gathered, flat)
        queue.put((rank, wrapper_cfg['type'], wrapper_cfg['device_ids'],
                   type(model.generator).__name__,
                   bool(torch.equal(gathered[0], gathered[1]))))
    except Exception as err:  # report to the parent instead of hanging
        queue.put((rank, repr(err)))
        raise
    finally:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def test_two_rank_gloo_separate_ddp_keeps_ranks_in_sync():
    # fork: the workers inherit the imported modules (seconds, not a
    # fresh interpreter each)
    ctx = mp.get_context('fork')
    queue = ctx.SimpleQueue()
    port = _free_port()
    procs = [ctx.Process(target=_ddp_worker, args=(r, 2, port, queue))
             for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert all(p.exitcode == 0 for p in procs), [p.exitcode for p in procs]
    results = sorted(queue.get() for _ in range(2))
    for res in results:
        assert len(res) == 5, res
        _, wrapper, device_ids, gen_type, in_sync = res
        assert wrapper == 'MMSeparateDistributedDataParallel'
        assert device_ids is None  # CPU: no device ids
        assert gen_type == 'MMDistributedDataParallel'
        assert in_sync  # different data per rank, same weights after steps


def _ckpt(path):
    from nucseg.utils import register_safe_globals
    register_safe_globals()
    return torch.load(path, map_location='cpu', weights_only=True)


def _train(cfg_dict, resume=False):
    from mmengine.runner import Runner

    from nucseg.utils import register_all_modules
    register_all_modules(init_default_scope=False)  # safe checkpoints
    cfg = Config(cfg_dict)
    cfg.resume = resume
    Runner.from_cfg(cfg).train()


def test_resume_restores_both_optimizers_and_schedulers(tmp_path):
    """Resuming at iteration 2 ends exactly where the uninterrupted run
    does (weights, both optimizers' states, both schedules).

    ``tools/train.py --resume`` with a multi-optimizer model is exercised
    by the CycleGAN chain test (tests/test_tools/test_cyc_pdam_chain.py).
    """
    full = tmp_path / 'full'
    _train(toy_config(full, max_iters=4, interval=2))
    part = tmp_path / 'part'
    part.mkdir()
    import shutil
    shutil.copy(full / 'iter_2.pth', part / 'iter_2.pth')
    (part / 'last_checkpoint').write_text(str(part / 'iter_2.pth'))
    _train(toy_config(part, max_iters=4, interval=2), resume=True)
    a, b = _ckpt(full / 'iter_4.pth'), _ckpt(part / 'iter_4.pth')
    assert b['meta']['iter'] == 4
    for k in a['state_dict']:
        assert torch.allclose(a['state_dict'][k], b['state_dict'][k],
                              atol=1e-6), k
    for key in ('generator', 'discriminator'):
        sa, sb = a['optimizer'][key]['state'], b['optimizer'][key]['state']
        assert sa.keys() == sb.keys() and sa
        for i in sa:
            for name, value in sa[i].items():
                assert torch.allclose(torch.as_tensor(value),
                                      torch.as_tensor(sb[i][name]),
                                      atol=1e-6), (key, i, name)
        assert a['param_schedulers'][key] == b['param_schedulers'][key]
    # Per-key schedules were applied: generator decayed linearly, the
    # discriminator dropped x0.1 at iteration 3.
    lr_g = a['optimizer']['generator']['param_groups'][0]['lr']
    lr_d = a['optimizer']['discriminator']['param_groups'][0]['lr']
    assert lr_g < 1e-2 and lr_d == pytest.approx(1e-3)
    assert b['optimizer']['generator']['param_groups'][0][
        'lr'] == pytest.approx(lr_g)
