"""Self-ensembling UDA's CPU config through tools/train.py and test.py
(in this process), --resume, a NaN loss, and 2-rank gloo DDP.

Source: 4 synthetic ``he_kumar`` images of 64 px; target: 4 synthetic
``he_cryo`` images of 48 px, smaller than the 64 px training crop (they
are padded by ``RandomInstanceCrop``; inference pads to the U-Net's
divisor).
"""
import importlib.util
import json
import os
import os.path as osp
import re
import subprocess
import sys

import numpy as np
import pytest
import torch

from .test_dist_train import _free_port

CONFIG = ('configs/selfens_uda/'
          'selfens-uda_unet-c16_1xb1+1-300it_synth-kumar-to-cryo-128.py')
CROP = 64


@pytest.fixture(scope='module')
def domains(tmp_path_factory):
    from nucseg.datasets.synthetic import make_dataset
    root = tmp_path_factory.mktemp('selfens')
    out = {}
    sizes = (('he_kumar', 64), ('he_cryo', 48))
    for i, (domain, size) in enumerate(sizes):
        out[domain] = str(root / domain)
        make_dataset(out[domain], domain=domain, num=4, size=size, seed=i,
                     splits=(0.5, 0.25, 0.25))
    return out


def _opts(domains, iters, extra=()):
    src, tgt = domains['he_kumar'], domains['he_cryo']
    key = 'train_dataloader.dataset.datasets'
    opts = [
        f'train_cfg.max_iters={iters}', f'train_cfg.val_interval={iters}',
        'default_hooks.checkpoint.interval=2',
        'default_hooks.checkpoint.max_keep_ckpts=3',
        'default_hooks.logger.interval=1',
        'custom_hooks.0.peak=4',  # ConsistencyRampHook
        'model.segmenter.backbone.base_channels=4',
        'model.reconstructor.backbone.base_channels=4',
        'model.discriminator.base_channels=4',
        f'{key}.0.data_root={src}', f'{key}.1.data_root={tgt}',
        f'{key}.0.pipeline.2.crop_size={CROP}',
        f'{key}.1.pipeline.1.crop_size={CROP}',
        f'val_dataloader.dataset.data_root={tgt}',
        f'test_dataloader.dataset.data_root={tgt}',
        'env_cfg.dist_cfg.backend=gloo',
    ]
    for split in ('train', 'val', 'test'):
        opts += [f'{split}_dataloader.num_workers=0',
                 f'{split}_dataloader.persistent_workers=False']
    return opts + list(extra)


def _tool(repo_root, name):
    spec = importlib.util.spec_from_file_location(
        f'selfens_{name}', repo_root / 'tools' / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_RUNS = iter(range(1000))


def _main(repo_root, tool, args, capfd):
    """Run a tool's ``main`` in this process; return (code, log)."""
    args = list(args) + [f'experiment_name=selfens_{next(_RUNS)}']
    code = _tool(repo_root, tool).main(args)
    out, err = capfd.readouterr()
    return code, out + err


def _losses(log, key):
    return [float(v) for v in re.findall(rf' {key}: ([-\d.naif]+)', log)]


def test_target_smaller_than_crop_is_padded(domains, repo_root,
                                            monkeypatch):
    from mmengine.config import Config

    from nucseg.registry import DATASETS
    from nucseg.utils import register_all_modules
    register_all_modules()
    monkeypatch.chdir(repo_root)
    cfg = Config.fromfile(CONFIG)
    sets = cfg.train_dataloader.dataset.datasets
    sets[0].data_root, sets[1].data_root = (domains['he_kumar'],
                                            domains['he_cryo'])
    sets[1].pipeline[1].crop_size = CROP
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    target = dataset[dataset.domain_indices(1)[0]]
    img = target['inputs']
    assert img.shape == (3, CROP, CROP)  # 48 px image padded to the crop
    assert (img[:, 48:, :] == 255).all() and (img[:, :, 48:] == 255).all()
    assert target['data_samples'].metainfo['is_primary'] is False


def test_train_resume_and_test_synthetic(domains, repo_root, tmp_path,
                                         capfd):
    work = tmp_path / 'work'
    code, log = _main(repo_root, 'train', [
        CONFIG, '--work-dir', str(work), '--cfg-options',
        *_opts(domains, 2)], capfd)
    assert code == 0, log[-3000:]
    code, log = _main(repo_root, 'train', [
        CONFIG, '--work-dir', str(work), '--resume', '--cfg-options',
        *_opts(domains, 4)], capfd)
    assert code == 0, log[-3000:]
    assert 'Iter(train) [3/4]' in log and 'Iter(train) [1/4]' not in log
    for key in ('loss_dice', 'loss_em', 'loss_consistency', 'loss_adv',
                'loss_recon', 'loss_dis_source', 'loss_dis_target',
                'loss_reconstructor'):
        values = _losses(log, key)
        assert len(values) == 2 and np.isfinite(values).all(), key
    # lambda(E) resumes on the ramp: iterations 2 and 3 of a 4-iteration
    # peak (exp(-5 (1 - E/e)^2) at E = 2, 3)
    weights = [float(v) for v in re.findall(
        r'consistency_weight: ([\d.]+)', log)]
    assert weights == pytest.approx([np.exp(-1.25), np.exp(-5 / 16)],
                                    abs=1e-4)
    for lr in ('segmenter.lr', 'discriminator.lr', 'reconstructor.lr'):
        assert lr in log
    assert re.search(r'Iter\(val\).*iou: [\d.]+.*aji: [\d.]+', log), \
        log[-2000:]

    from nucseg.utils import register_safe_globals
    register_safe_globals()
    ckpt = torch.load(work / 'iter_4.pth', map_location='cpu',
                      weights_only=True)
    assert set(ckpt['optimizer']) == {'segmenter', 'discriminator',
                                      'reconstructor'}
    two = torch.load(work / 'iter_2.pth', map_location='cpu',
                     weights_only=True)
    for part in ('segmenter.', 'discriminator.', 'reconstructor.'):
        assert any(not torch.equal(two['state_dict'][k], v)
                   for k, v in ckpt['state_dict'].items()
                   if k.startswith(part)), part

    code, log = _main(repo_root, 'test', [
        CONFIG, str(work / 'iter_4.pth'), '--work-dir',
        str(tmp_path / 'test'), '--cfg-options', *_opts(domains, 4)],
        capfd)
    assert code in (None, 0), log[-3000:]
    metrics = json.loads((tmp_path / 'test' / 'metrics.json').read_text())
    for key in ('iou', 'dice', 'aji', 'pq'):
        assert 0.0 <= metrics[key] <= 1.0, (key, metrics)


def test_nan_loss_stops_training_naming_the_loss(domains, repo_root,
                                                 tmp_path, capfd):
    """A NaN discriminator (LeakyReLU slope NaN): the first iteration
    stops with the non-finite terms named, no checkpoint written."""
    work = tmp_path / 'nan'
    code, log = _main(repo_root, 'train', [
        CONFIG, '--work-dir', str(work), '--cfg-options',
        *_opts(domains, 2, ['model.discriminator.negative_slope=nan'])],
        capfd)
    assert code == 1
    message = re.search(r'error: non-finite loss at iteration 1: (.*)',
                        log)
    assert message, log[-3000:]
    named = message.group(1)
    for key in ('loss_dis_source=nan', 'loss_dis_target=nan',
                'loss_adv=nan'):
        assert key in named
    assert 'loss_dice=' not in named  # finite terms are not blamed
    assert not list(work.glob('*.pth'))


def test_two_rank_gloo_ddp(domains, repo_root, tmp_path):
    """tools/train.py under torchrun, 2 CPU ranks, one DDP per part."""
    runs = [[CONFIG, '--work-dir', str(tmp_path / 'ddp'), '--cfg-options',
             *_opts(domains, 2, ['train_cfg.val_interval=100'])]]
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=str(repo_root))
    proc = subprocess.run(
        [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node',
         '2', '--master_port', str(_free_port()),
         'tests/test_tools/train_configs_ddp.py', json.dumps(runs)],
        cwd=repo_root, env=env, capture_output=True, text=True,
        timeout=600)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-6000:]
    assert 'Distributed training: True' in log and 'GPU number: 2' in log
    assert 'Iter(train) [2/2]' in log and 'loss_adv' in log
    assert osp.isfile(tmp_path / 'ddp' / 'iter_2.pth')
