"""AMA-SAM's synthetic CPU config through tools/train.py and test.py, in
one process and under 2-rank CPU DDP (gloo)."""
import json
import os.path as osp
import re

import torch

from .conftest import run_tool
from .test_dist_train import _run

CONFIG = 'configs/ama_sam/ama-sam_tiny_hr-cgrl_1xb4-200it_synth-3dom-256.py'
SIZE = 64


def _options(domains: dict, iters: int, interval: int) -> list:
    roots = [domains['he_kumar'], domains['he_tnbc'], domains['fluo']]
    opts = [
        f'train_cfg.max_iters={iters}', f'train_cfg.val_interval={interval}',
        f'default_hooks.checkpoint.interval={interval}',
        'default_hooks.logger.interval=1',
        'custom_hooks.2.interval=1',  # DiscriminatorAccuracyHook
        'train_dataloader.batch_size=2',
        f'model.data_preprocessor.size=[{SIZE},{SIZE}]',
        f'model.backbone.image_size={SIZE}',
        f'model.decode_head.image_size={SIZE}',
        'env_cfg.dist_cfg.backend=gloo',
    ]
    for i, root in enumerate(roots):
        key = f'train_dataloader.dataset.datasets.{i}'
        opts += [f'{key}.data_root={root}',
                 f'{key}.pipeline.2.scale=[{SIZE},{SIZE}]']
    for split in ('train', 'val', 'test'):
        opts += [f'{split}_dataloader.num_workers=0',
                 f'{split}_dataloader.persistent_workers=False']
    for split in ('val', 'test'):
        opts += [f'{split}_dataloader.dataset.data_root={roots[0]}',
                 f'{split}_dataloader.dataset.pipeline.1.scale=[{SIZE},'
                 f'{SIZE}]']
    return opts


def _state(path):
    from nucseg.utils import register_safe_globals
    register_safe_globals()
    return torch.load(path, map_location='cpu',
                      weights_only=True)['state_dict']


def test_train_and_test_synthetic_three_domains(
        synthetic_domains, repo_root, tmp_path):
    work = tmp_path / 'work'
    opts = _options(synthetic_domains, iters=4, interval=2)
    proc = run_tool(['tools/train.py', CONFIG, '--work-dir', str(work),
                     '--cfg-options', *opts], cwd=repo_root)
    log = proc.stdout + proc.stderr
    # Eq. 3's two weights from the image counts: 3 primary training images,
    # 6 + 6 auxiliary ones (whole sets): w_main = 2 * 12 / 15, w_aux =
    # 2 * 3 / 15.
    assert ("DomainSizesHook: images he_kumar=3, he_tnbc=6, fluo=6 -> "
            "w_main=1.600 (primary ['he_kumar']), w_aux=0.400" in log), (
                log[-3000:])
    losses = {k: [float(v) for v in re.findall(rf' {k}: ([-\d.naif]+)', log)]
              for k in ('loss_fine', 'loss_coarse', 'loss_cgrl')}
    for key, values in losses.items():
        assert len(values) == 4, (key, log[-3000:])
        assert all(torch.isfinite(torch.tensor(v)) for v in values), key
    assert re.search(r'disc_acc_he_kumar: [\d.]+', log)
    assert 'grl_lambda: 1.0000' in log

    # The frozen SAM stays frozen; adapters, decoder additions, SPGen and
    # the discriminator move.
    s2, s4 = _state(work / 'iter_2.pth'), _state(work / 'iter_4.pth')

    def changed(prefix):
        keys = [k for k in s2 if k.startswith(prefix)]
        assert keys, prefix
        return any(not torch.equal(s2[k], s4[k]) for k in keys)

    assert changed('discriminator.')
    assert changed('prompter.')
    assert any(not torch.equal(s2[k], s4[k]) for k in s2 if 'adapter' in k)
    frozen = [k for k in s2 if k.startswith('backbone.') and 'adapter'
              not in k]
    assert frozen and all(torch.equal(s2[k], s4[k]) for k in frozen)
    for part in ('decode_head.mask_decoder', 'decode_head.prompt_encoder'):
        frozen_dec = [k for k in s2 if k.startswith(part)]
        assert frozen_dec and all(
            torch.equal(s2[k], s4[k]) for k in frozen_dec), part

    out = tmp_path / 'preds'
    run_tool(['tools/test.py', CONFIG, str(work / 'iter_4.pth'),
              '--work-dir', str(tmp_path / 'test'), '--out', str(out),
              '--cfg-options', *opts], cwd=repo_root)
    metrics = json.loads((tmp_path / 'test' / 'metrics.json').read_text())
    assert 0.0 <= metrics['aji'] <= 1.0 and 'pixel/dice' in metrics
    names = open(osp.join(synthetic_domains['he_kumar'], 'splits',
                          'test.txt')).read().split()
    assert sorted(p.stem for p in out.glob('*.png')) == sorted(names)


def test_two_rank_ddp_training(synthetic_domains, repo_root, tmp_path):
    work = tmp_path / 'ddp'
    opts = _options(synthetic_domains, iters=2, interval=2)
    log = _run(['bash', 'tools/dist_train.sh', CONFIG, '2', '--work-dir',
                str(work), '--cfg-options', *opts], repo_root)
    assert 'Distributed training: True' in log and 'GPU number: 2' in log
    assert 'Iter(train) [2/2]' in log and 'loss_cgrl' in log
    assert osp.isfile(work / 'iter_2.pth')
