"""The CyC-PDAM chain on synthetic CPU data through the user-facing tools.

synthetic ``fluo`` -> ``he_kumar``: tiny CycleGAN (tools/train.py, then
--resume) -> tools/cyc_pdam/translate.py -> tools/cyc_pdam/inpaint.py ->
tiny PDAM (tools/train.py, then --resume) -> tools/test.py; and both
models for two iterations under 2-rank CPU DDP (gloo).

The tools' ``main`` functions run in this process (each fresh interpreter
costs ~13 s of CPU for the imports); runs get distinct experiment names.
"""
import importlib.util
import json
import os
import os.path as osp
import re
import sys

import numpy as np
import pytest
import torch

from nucseg.utils.io import read_image, read_label
from .test_dist_train import _free_port

CYCLEGAN = 'configs/cyc_pdam/cyclegan_tiny_1xb2-20it_synth-fluo-to-he-64.py'
PDAM = 'configs/cyc_pdam/pdam_tiny-r18_1xb1+1-20it_synth-fluo-to-he-64.py'


@pytest.fixture(autouse=True)
def _one_thread():
    """One intra-op thread: on 2 shared cores, 2 OpenMP threads per
    process are many times slower when the cores are busy."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _plain_config_dumps(monkeypatch):
    """Skip yapf's formatting of the config the runner dumps and logs
    (seconds per run for these configs); the text stays valid Python."""
    import mmengine.config.config as config_module
    monkeypatch.setattr(config_module, 'FormatCode',
                        lambda text, **kwargs: (text, False))


@pytest.fixture(scope='module')
def domains(tmp_path_factory):
    from nucseg.datasets.synthetic import make_dataset
    root = tmp_path_factory.mktemp('cyc_pdam')
    out = {}
    for i, domain in enumerate(('fluo', 'he_kumar')):
        out[domain] = str(root / domain)
        make_dataset(out[domain], domain=domain, num=8, size=64, seed=i,
                     splits=(0.5, 0.25, 0.25))
    out['root'] = root
    return out


def _loader_opts():
    return [f'{s}_dataloader.{k}' for s in ('train', 'val', 'test')
            for k in ('num_workers=0', 'persistent_workers=False')]


def _cyclegan_opts(domains, iters):
    return [
        f'train_cfg.max_iters={iters}', 'default_hooks.checkpoint.interval=2',
        'default_hooks.logger.interval=1', 'custom_hooks.0.interval=2',
        f'train_dataloader.dataset.domain_a.data_root={domains["fluo"]}',
        f'train_dataloader.dataset.domain_b.data_root='
        f'{domains["he_kumar"]}',
        'env_cfg.dist_cfg.backend=gloo', 'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False'
    ]


def _pdam_opts(source, target, iters):
    return [
        f'train_cfg.max_iters={iters}', f'train_cfg.val_interval={iters}',
        'default_hooks.checkpoint.interval=2',
        'default_hooks.logger.interval=1',
        f'train_dataloader.dataset.datasets.0.data_root={source}',
        f'train_dataloader.dataset.datasets.1.data_root={target}',
        f'val_dataloader.dataset.data_root={source}',
        f'test_dataloader.dataset.data_root={target}',
        'env_cfg.dist_cfg.backend=gloo'
    ] + _loader_opts()


def _tool(path, repo_root):
    spec = importlib.util.spec_from_file_location(
        osp.basename(path)[:-3], repo_root / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _main(repo_root, tool, args, capfd, name):
    """Run ``tool``'s ``main`` with ``args``; return its log output."""
    module = _tool(tool, repo_root)
    argv = sys.argv
    sys.argv = [tool] + list(args)
    if '--cfg-options' in args:
        sys.argv.append(f'experiment_name={name}')
    try:
        rc = module.main()
    finally:
        sys.argv = argv
    out, err = capfd.readouterr()
    assert rc in (None, 0), out[-3000:] + err[-3000:]
    return out + err


def _losses(log, key):
    return [float(v) for v in re.findall(rf' {key}: ([-\d.naif]+)', log)]


def test_synthetic_chain(domains, repo_root, tmp_path, capfd):
    # 1. CycleGAN: 2 iterations, then --resume to 4 (both optimizers and
    #    their schedulers come back)
    gan = tmp_path / 'cyclegan'
    _main(repo_root, 'tools/train.py',
          [CYCLEGAN, '--work-dir', str(gan), '--cfg-options',
           *_cyclegan_opts(domains, 2)], capfd, 'gan_a')
    log = _main(repo_root, 'tools/train.py',
                [CYCLEGAN, '--work-dir', str(gan), '--resume',
                 '--cfg-options', *_cyclegan_opts(domains, 4)], capfd,
                'gan_b')
    assert 'Iter(train) [3/4]' in log and 'Iter(train) [1/4]' not in log
    for key in ('loss_gan_a2b', 'loss_cycle_a', 'loss_d_b',
                'loss_generators', 'loss_discriminators'):
        values = _losses(log, key)
        assert len(values) == 2 and np.isfinite(values).all(), key
    assert 'generators.lr' in log and 'discriminators.lr' in log
    assert (gan / 'samples' / 'iter_4.png').is_file()
    from nucseg.utils import register_safe_globals
    register_safe_globals()
    ckpt = torch.load(gan / 'iter_4.pth', map_location='cpu',
                      weights_only=True)
    assert set(ckpt['optimizer']) == {'generators', 'discriminators'}
    assert set(ckpt['param_schedulers']) == {'generators', 'discriminators'}

    # 2. translate the labelled fluorescence set (labels carried over)
    trans = domains['root'] / 'fluo_to_he'
    rc = _tool('tools/cyc_pdam/translate.py', repo_root).main([
        CYCLEGAN, str(gan / 'iter_4.pth'), domains['fluo'], str(trans),
        '--device', 'cpu', '--cfg-options', *_cyclegan_opts(domains, 4)])
    assert rc == 0
    names = sorted(p.stem for p in (trans / 'images').glob('*.png'))
    assert len(names) == 8
    for name in names:
        src = osp.join(domains['fluo'], 'labels', f'{name}.png')
        assert np.array_equal(read_label(trans / 'labels' / f'{name}.png'),
                              read_label(src))
    assert (trans / 'splits' / 'train.txt').read_text().split() == \
        open(osp.join(domains['fluo'], 'splits', 'train.txt')).read().split()

    # 3. nuclei inpainting
    inp = domains['root'] / 'fluo_to_he_inp'
    rc = _tool('tools/cyc_pdam/inpaint.py', repo_root).main(
        [str(trans), str(inp)])
    assert rc == 0
    for name in names:
        a = read_image(trans / 'images' / f'{name}.png')
        b = read_image(inp / 'images' / f'{name}.png')
        lab = read_label(inp / 'labels' / f'{name}.png') > 0
        assert np.array_equal(a[lab], b[lab])  # annotated nuclei untouched

    # 4. PDAM: 2 iterations, then --resume to 4 (validation at 4)
    pdam = tmp_path / 'pdam'
    _main(repo_root, 'tools/train.py',
          [PDAM, '--work-dir', str(pdam), '--cfg-options',
           *_pdam_opts(inp, domains['he_kumar'], 2)], capfd, 'pdam_a')
    log = _main(repo_root, 'tools/train.py',
                [PDAM, '--work-dir', str(pdam), '--resume', '--cfg-options',
                 *_pdam_opts(inp, domains['he_kumar'], 4)], capfd, 'pdam_b')
    assert 'Iter(train) [3/4]' in log and 'Iter(train) [1/4]' not in log
    for key in ('loss_da_img', 'loss_da_sem', 'loss_rpn_cls', 'loss_mask',
                'loss_sem_seg'):
        values = _losses(log, key)
        assert len(values) == 2 and np.isfinite(values).all(), key
    assert re.search(r'grl_lambda: 0\.\d+', log)
    assert 'aji' in log

    # 5. test on the target domain: AJI, object F1, pixel F1
    _main(repo_root, 'tools/test.py',
          [PDAM, str(pdam / 'iter_4.pth'), '--work-dir',
           str(tmp_path / 'test'), '--cfg-options',
           *_pdam_opts(inp, domains['he_kumar'], 4)], capfd, 'pdam_test')
    metrics = json.loads((tmp_path / 'test' / 'metrics.json').read_text())
    for key in ('aji', 'obj_f1', 'pixel/f1'):
        value = [v for k, v in metrics.items() if k.endswith(key)]
        assert value and 0.0 <= value[0] <= 1.0, (key, metrics)

    # 6. the inference API (tools/infer.py) serves PDAM too
    from nucseg.apis import inference_model, init_model
    model = init_model(PDAM, str(pdam / 'iter_4.pth'), 'cpu',
                       cfg_options=dict(
                           test_dataloader=dict(dataset=dict(
                               data_root=domains['he_kumar']))))
    image = sorted((domains['root'] / 'he_kumar' / 'images').glob('*.png'))
    inst = inference_model(model, str(image[0]))
    assert inst.shape == (64, 64) and inst.dtype == np.int32


def _ddp_rank(rank, port, runs, repo_root, queue):
    """One rank: tools/train.py's main for each run (--launcher pytorch)."""
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE='2',
                      MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    torch.set_num_threads(1)  # forked: no OpenMP team of the parent
    import mmengine.config.config as config_module
    config_module.FormatCode = lambda text, **kwargs: (text, False)
    train = _tool('tools/train.py', repo_root)
    try:
        for name, args in runs:
            sys.argv = ['tools/train.py', *args, f'experiment_name={name}',
                        '--launcher', 'pytorch']
            rc = train.main()
            assert rc in (None, 0), rc
        queue.put((rank, 'ok'))
    except BaseException as err:  # report, do not hang the other rank
        queue.put((rank, repr(err)))
        raise


def test_two_rank_ddp_cyclegan_and_pdam(domains, repo_root, tmp_path,
                                        capfd):
    """tools/train.py with --launcher pytorch in 2 CPU ranks (gloo), both
    models one after the other in the same ranks. The ranks are forked
    from this process (no fresh interpreters: seconds instead of a
    minute); tools/dist_train.sh itself is tested in test_dist_train.py.
    """
    import multiprocessing as mp
    runs = [
        ('ddp_gan', [CYCLEGAN, '--work-dir', str(tmp_path / 'gan'),
                     '--cfg-options', *_cyclegan_opts(domains, 2)]),
        # PDAM on the untranslated synthetic sets: DDP only needs a
        # labelled source and an unlabelled target
        ('ddp_pdam', [PDAM, '--work-dir', str(tmp_path / 'pdam'),
                      '--cfg-options',
                      *_pdam_opts(domains['he_kumar'], domains['fluo'], 2)]),
    ]
    ctx = mp.get_context('fork')
    queue = ctx.SimpleQueue()
    port = _free_port()
    procs = [ctx.Process(target=_ddp_rank,
                         args=(r, port, runs, repo_root, queue))
             for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(600)
    out, err = capfd.readouterr()
    log = out + err
    results = sorted(queue.get() for _ in range(2))
    assert results == [(0, 'ok'), (1, 'ok')], (results, log[-4000:])
    assert all(p.exitcode == 0 for p in procs)
    assert log.count('Distributed training: True') >= 2
    assert 'GPU number: 2' in log
    assert log.count('Iter(train) [2/2]') >= 2
    assert 'loss_generators' in log and 'loss_da_img' in log
    assert 'MMSeparateDistributedDataParallel' in (
        tmp_path / 'gan' / 'cyclegan_tiny_1xb2-20it_synth-fluo-to-he-64.py'
    ).read_text()
    assert osp.isfile(tmp_path / 'gan' / 'iter_2.pth')
    assert osp.isfile(tmp_path / 'pdam' / 'iter_2.pth')
