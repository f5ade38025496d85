"""The example external plugin: numerics and a short training run."""
import pytest
import torch

from ..test_tools.conftest import run_tool, tiny_options

PLUGIN_CFG = ('projects/tversky_loss/configs/'
              'unet_tversky_1xb4-300it_synth-he-256x256.py')


@pytest.fixture
def plugin_path(repo_root, monkeypatch):
    path = str(repo_root / 'projects' / 'tversky_loss')
    monkeypatch.syspath_prepend(path)
    return path


def test_tversky_numerics(plugin_path):
    from nucseg_tversky import MultiClassTverskyLoss
    target = torch.tensor([[[0, 1], [2, 2]]])
    perfect = torch.nn.functional.one_hot(target, 3).permute(0, 3, 1, 2)
    loss = MultiClassTverskyLoss(smooth=1e-6)
    assert loss(perfect.float() * 50, target) < 1e-4
    wrong = loss(torch.roll(perfect, 1, dims=1).float() * 50, target)
    assert wrong > 0.99
    # beta > alpha: missing foreground costs more than a false alarm.
    fn_heavy = MultiClassTverskyLoss(alpha=0.1, beta=0.9, smooth=1e-6)
    miss = torch.zeros(1, 3, 1, 2)
    miss[0, 0] = 50  # predicts background everywhere
    t = torch.tensor([[[0, 1]]])
    extra = torch.zeros(1, 3, 1, 2)
    extra[0, 1] = 50  # predicts class 1 everywhere
    assert fn_heavy(miss, t) > fn_heavy(extra, t)
    assert loss.loss_name == 'loss_tversky'
    ignored = torch.tensor([[[255, 1], [2, 2]]])
    assert torch.isfinite(loss(perfect.float(), ignored))


def test_plugin_trains_through_tools(plugin_path, synthetic_he, repo_root,
                                     tmp_path):
    work = tmp_path / 'plugin'
    opts = tiny_options(synthetic_he, iters=2, interval=2)
    proc = run_tool(['tools/train.py', PLUGIN_CFG, '--work-dir', str(work),
                     '--cfg-options', *opts], cwd=repo_root,
                    env_extra=dict(PYTHONPATH=plugin_path))
    log = proc.stdout + proc.stderr
    assert 'loss_tversky' in log
    assert (work / 'iter_2.pth').is_file()
