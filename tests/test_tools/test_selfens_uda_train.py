"""Self-ensembling UDA's CPU config through tools/train.py and test.py
(in this process), --resume, and 2-rank gloo DDP.

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

    # the inference API serves the trained model (48 px: padded to 8)
    from nucseg.apis import inference_model, init_model
    dumped = work / osp.basename(CONFIG)  # with the tiny overrides
    model = init_model(str(dumped), str(work / 'iter_4.pth'), device='cpu')
    image = osp.join(domains['he_cryo'], 'images',
                     sorted(os.listdir(osp.join(domains['he_cryo'],
                                                'images')))[0])
    assert inference_model(model, image).shape == (48, 48)


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


def test_synthetic_comparison_script(repo_root, tmp_path, monkeypatch,
                                     capsys):
    """tools/analysis_tools/selfens_uda_synthetic.py at toy size: both
    variants trained and tested on the target, the BatchNorm diagnostic
    reported and leaving the model's running statistics as they were."""
    monkeypatch.chdir(repo_root)
    spec = importlib.util.spec_from_file_location(
        'selfens_uda_synthetic',
        repo_root / 'tools' / 'analysis_tools' / 'selfens_uda_synthetic.py')
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    work = tmp_path / 'work'
    assert script.main([
        '--data-root', str(tmp_path / 'data'), '--num', '8', '--size', '64',
        '--iters', '2', '--work-dir', str(work), '--cfg-options',
        'model.segmenter.backbone.base_channels=4',
        'model.reconstructor.backbone.base_channels=4',
        'model.discriminator.base_channels=4',
        'train_dataloader.dataset.datasets.0.pipeline.2.crop_size=64',
        'train_dataloader.dataset.datasets.1.pipeline.1.crop_size=64',
        'default_hooks.logger.interval=1']) == 0
    out = capsys.readouterr().out
    assert 'adapted - source-only Dice (with CRF)' in out
    assert '  source_only: eval: mean p' in out
    results = json.loads((work / 'results.json').read_text())['results']
    assert set(results) == {'source_only', 'adapted'}
    for res in results.values():
        for key in ('crf', 'no_crf'):
            assert 0.0 <= res[key]['dice'] <= 1.0
        diag = res['bn_diagnostic']
        assert 0.0 < diag['gt_fraction'] < 1.0
        for mode in ('eval', 'batch'):
            assert 0.0 <= diag[mode]['dice'] <= 1.0
            assert 0.0 <= diag[mode]['above_half'] <= 1.0
    # The diagnostic does not move BatchNorm's running statistics (a
    # train-mode forward would): two calls on a fresh model agree.
    from nucseg.registry import MODELS
    from nucseg.utils import register_all_modules
    register_all_modules()
    cfg = script.build_cfg(script.parse_args([
        '--cfg-options', 'model.segmenter.backbone.base_channels=4',
        'model.reconstructor.backbone.base_channels=4',
        'model.discriminator.base_channels=4']), 'adapted',
        str(tmp_path / 'data' / 'he_kumar'),
        str(tmp_path / 'data' / 'he_cryo'))
    model = MODELS.build(cfg.model)
    model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    target = str(tmp_path / 'data' / 'he_cryo')
    first = script.bn_diagnostic(model, target)
    assert script.bn_diagnostic(model, target) == first
    assert all(torch.equal(before[k], v)
               for k, v in model.state_dict().items())
    assert not model.segmenter.training
