"""SAMDA's three steps chained through tools/samda/run_stages.py and
tools/train.py on synthetic EM (CPU), resume, and 2-rank gloo DDP."""
import re
import shutil

import pytest
import torch

from .conftest import run_tool
from .test_dist_train import _run

STEP1 = 'configs/samda/samda-step1_sam-tiny_1xb2-40it_synth-em2fibsem-64.py'
STEP2 = 'configs/samda/samda-step2_sam-tiny_1xb2-20it_synth-em2fibsem-64.py'


def _options(iters: int = 2) -> list:
    opts = [f'train_cfg.max_iters={iters}', f'train_cfg.val_interval={iters}',
            f'default_hooks.checkpoint.interval={iters}',
            'default_hooks.logger.interval=1',
            'env_cfg.dist_cfg.backend=gloo']
    for split in ('train', 'val', 'test'):
        opts += [f'{split}_dataloader.num_workers=0',
                 f'{split}_dataloader.persistent_workers=False']
    return opts


@pytest.fixture(scope='module')
def em_domains(tmp_path_factory):
    from nucseg.datasets.synthetic import make_dataset
    root = tmp_path_factory.mktemp('em')
    out = {}
    for seed, domain in enumerate(('em', 'em_fibsem')):
        make_dataset(str(root / domain), domain=domain, num=6, size=64,
                     seed=seed, splits=(0.5, 0.25, 0.25))
        out[domain] = str(root / domain)
    return out


@pytest.fixture(scope='module')
def chain(em_domains, repo_root, tmp_path_factory):
    work = tmp_path_factory.mktemp('samda') / 'chain'
    proc = run_tool(
        ['tools/samda/run_stages.py', '--preset', 'synth', '--work-dir',
         str(work), '--shots', '2', '--shot-seed', '1', '--source-root',
         em_domains['em'], '--target-root', em_domains['em_fibsem'],
         '--no-test',  # each step validates on the target test split
         '--cfg-options', *_options()], cwd=repo_root)
    return work, proc.stdout + proc.stderr


def _ckpt(path):
    from nucseg.utils import register_safe_globals
    register_safe_globals()
    return torch.load(path, map_location='cpu', weights_only=True)


def _state(path):
    return _ckpt(path)['state_dict']


def _part(state, prefix):
    keys = [k for k in state if k.startswith(prefix)]
    assert keys, prefix
    return keys


def test_three_steps_chain_end_to_end(chain, em_domains, capsys):
    work, log = chain
    s1, s2, s3 = (_state(work / f'step{k}' / 'iter_2.pth')
                  for k in (1, 2, 3))
    assert set(s1) == set(s2) == set(s3)
    unet, proj, sam = (_part(s1, p) for p in ('unet.', 'projector.',
                                              'sam_encoder.'))
    same = lambda a, b, keys: all(torch.equal(a[k], b[k]) for k in keys)  # noqa
    # step 2 starts from step 1 (load_from) and changes only the projector
    assert same(s1, s2, unet) and same(s1, s2, sam)
    assert not same(s1, s2, proj)
    # step 3 fine-tunes U-Net and projector; SAM stays frozen
    assert not same(s2, s3, unet) and not same(s2, s3, proj)
    assert same(s2, s3, sam)
    logs = {k: '\n'.join(p.read_text() for p in (work / f'step{k}').rglob(
        '*.log')) for k in (1, 2, 3)}
    assert re.search(r'loss_ce: [\d.]+', logs[1])
    assert re.search(r'loss_feat: [\d.]+ .*loss_style: [\d.]+', logs[2])
    assert 'proj_std' in logs[2]
    assert "trains ['projector', 'sam_encoder']" in logs[2]
    assert re.search(r'em_fibsem: 2 shot\(s\) with seed 1', logs[3])
    assert 'Load checkpoint from' in logs[2] + logs[3]
    # every step ends with a validation on the target (em_fibsem) test
    # split: foreground Dice and IoU of SemanticMetric
    for k in (1, 2, 3):
        dice, iou = re.findall(
            r'Iter\(val\).*pixel/dice: ([\d.]+)\s+pixel/iou: ([\d.]+)',
            logs[k])[-1]
        assert 0.0 <= float(iou) <= float(dice) <= 1.0
    scalars = (next((work / 'step3').rglob('scalars.json'))).read_text()
    assert '"pixel/dice"' in scalars and '"pixel/iou"' in scalars
    # a second call skips the finished steps (in-process: nothing runs)
    from ..test_configs.test_samda_configs import _run_stages
    capsys.readouterr()
    assert _run_stages().main(['--preset', 'synth', '--work-dir', str(work),
                               '--shots', '2', '--no-test', '--cfg-options',
                               *_options()]) == 0
    assert capsys.readouterr().out.count('exists, skipped') == 3


def test_resume_step2(chain, em_domains, repo_root, tmp_path):
    work, _ = chain
    resumed = tmp_path / 'step2'
    shutil.copytree(work / 'step2', resumed)
    (resumed / 'last_checkpoint').write_text(str(resumed / 'iter_2.pth'))
    opts = _options(iters=3) + [
        f'train_dataloader.dataset.datasets.0.data_root={em_domains["em"]}',
        'train_dataloader.dataset.datasets.1.data_root='
        f'{em_domains["em_fibsem"]}',
        f'val_dataloader.dataset.data_root={em_domains["em_fibsem"]}',
        'default_hooks.checkpoint.interval=1',
        'load_from=None']  # mmengine would resume from load_from
    proc = run_tool(['tools/train.py', STEP2, '--work-dir', str(resumed),
                     '--resume', '--cfg-options', *opts], cwd=repo_root)
    log = proc.stdout + proc.stderr
    assert 'resumed epoch: 0, iter: 2' in log
    assert 'Iter(train) [3/3]' in log
    assert (resumed / 'iter_3.pth').is_file()
    # the optimizer state resumed holds only the projector's parameters
    ckpt = _ckpt(resumed / 'iter_3.pth')
    n_proj = len([k for k in ckpt['state_dict']
                  if k.startswith('projector.')])
    assert len(ckpt['optimizer']['state']) == n_proj


def test_two_rank_ddp_step2(chain, em_domains, repo_root, tmp_path):
    work, _ = chain
    opts = _options() + [
        f'load_from={work / "step1" / "iter_2.pth"}',
        f'train_dataloader.dataset.datasets.0.data_root={em_domains["em"]}',
        'train_dataloader.dataset.datasets.1.data_root='
        f'{em_domains["em_fibsem"]}',
        f'val_dataloader.dataset.data_root={em_domains["em_fibsem"]}']
    log = _run(['bash', 'tools/dist_train.sh', STEP2, '2', '--work-dir',
                str(tmp_path / 'ddp'), '--cfg-options', *opts], repo_root)
    assert 'Distributed training: True' in log and 'GPU number: 2' in log
    assert 'Iter(train) [2/2]' in log and 'loss_style' in log
    assert (tmp_path / 'ddp' / 'iter_2.pth').is_file()
