"""NucsegRunner, CheckpointHook and NonFiniteLossHook under faults.

In-process runs of a tiny linear model (seconds): NaN losses, a save that
dies half-way, truncated and untrusted checkpoints, strict loading.
"""
import glob
import io
import os
import os.path as osp
from types import SimpleNamespace

import pytest
import torch
from mmengine.fileio.backends import LocalBackend
from mmengine.logging import MessageHub

from nucseg.engine.hooks import (NonFiniteLossError, NonFiniteLossHook,
                                 non_finite_losses)
from nucseg.registry import RUNNERS
from nucseg.utils import register_all_modules
from nucseg.utils.checkpoint import (CheckpointError,
                                     CheckpointMismatchError,
                                     NonFiniteStateError,
                                     UntrustedCheckpointError)
from .fault_toy import toy_cfg

register_all_modules(init_default_scope=False)


def _runner(work_dir, **kw):
    return RUNNERS.build(toy_cfg(work_dir, **kw))


def _iters(work_dir):
    return sorted(f for f in os.listdir(work_dir) if f.startswith('iter_'))


class _Payload:
    """Unpickling it would create ``path`` (it must never run)."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (os.system, (f'touch {self.path}', ))


# ------------------------------------------------------------ NaN guard
def test_non_finite_losses_names_the_terms():
    out = dict(loss=torch.tensor(float('nan')), loss_ce=torch.tensor(1.0),
               loss_disc=torch.tensor(float('inf')), acc=float('nan'))
    assert set(non_finite_losses(out)) == {'loss', 'loss_disc'}
    assert non_finite_losses(dict(loss=torch.tensor(0.5))) == {}
    assert non_finite_losses(None) == {}
    # Several optimizers (custom train_step): plain floats too.
    assert non_finite_losses(dict(loss_g=0.1, loss_d=float('nan'))) == {
        'loss_d': pytest.approx(float('nan'), nan_ok=True)
    }


def test_hook_raises_with_term_and_iteration():
    hub = MessageHub.get_instance('nan-hook-unit')
    runner = SimpleNamespace(iter=6, message_hub=hub)
    hook = NonFiniteLossHook()
    hook.after_train_iter(runner, 0, outputs=dict(loss_g=torch.tensor(1.)))
    with pytest.raises(NonFiniteLossError,
                       match=r'iteration 7: loss_d=nan'):
        hook.after_train_iter(
            runner, 0, outputs=dict(loss_g=torch.tensor(1.),
                                    loss_d=torch.tensor(float('nan'))))


def test_training_stops_at_first_nan_without_saving_it(tmp_path):
    runner = _runner(tmp_path, max_iters=6, interval=2,
                     model=dict(type='FaultToyModel', nan_at=3,
                                nan_term='loss_aux'))
    with pytest.raises(NonFiniteLossError,
                       match=r'iteration 3: loss_aux=nan'):
        runner.train()
    # iter_2 was saved; the NaN state of iteration 3 (weights already
    # updated with NaN gradients) is not, and last_checkpoint is iter_2.
    assert _iters(tmp_path) == ['iter_2.pth']
    assert open(tmp_path / 'last_checkpoint').read().endswith('iter_2.pth')
    assert not torch.isfinite(runner.model.linear.weight).all()


def test_runner_adds_the_guard_when_custom_hooks_replace_it(tmp_path):
    runner = _runner(tmp_path, custom_hooks=[])
    assert any(isinstance(h, NonFiniteLossHook) for h in runner.hooks)
    runner = _runner(tmp_path / 'b', custom_hooks=[],
                     check_finite_loss=False)
    assert not any(isinstance(h, NonFiniteLossHook) for h in runner.hooks)


def test_non_finite_state_is_never_saved(tmp_path):
    runner = _runner(tmp_path)
    with torch.no_grad():
        runner.model.linear.bias.fill_(float('inf'))
    with pytest.raises(NonFiniteStateError, match='linear.bias'):
        runner.save_checkpoint(str(tmp_path), 'iter_9.pth', by_epoch=False)
    assert not os.listdir(tmp_path) or 'iter_9.pth' not in os.listdir(
        tmp_path)


# ----------------------------------------------------- atomic checkpoints
def test_save_killed_half_way_leaves_the_last_checkpoints(
        tmp_path, monkeypatch):
    """A save that dies while writing iter_4 (max_keep_ckpts=1) leaves
    iter_2 complete and last_checkpoint pointing at it; no truncated
    iter_4.pth appears."""
    put = LocalBackend.put

    def dying_put(self, obj, filepath):
        if 'iter_4' in str(filepath):
            with open(filepath, 'wb') as f:
                f.write(obj[:len(obj) // 2])
            raise KeyboardInterrupt('killed during the save')
        return put(self, obj, filepath)

    monkeypatch.setattr(LocalBackend, 'put', dying_put)
    cfg = toy_cfg(tmp_path, max_iters=6, interval=2)
    cfg.default_hooks.checkpoint.max_keep_ckpts = 1
    runner = RUNNERS.build(cfg)
    with pytest.raises(KeyboardInterrupt):
        runner.train()
    assert _iters(tmp_path) == ['iter_2.pth']
    assert open(tmp_path / 'last_checkpoint').read().endswith('iter_2.pth')
    assert not [f for f in os.listdir(tmp_path) if f.endswith('.tmp')]
    from nucseg.utils.checkpoint import load_trusted
    assert load_trusted(tmp_path / 'iter_2.pth')['meta']['iter'] == 2


def test_max_keep_ckpts_still_prunes(tmp_path):
    cfg = toy_cfg(tmp_path, max_iters=6, interval=2)
    cfg.default_hooks.checkpoint.max_keep_ckpts = 2
    RUNNERS.build(cfg).train()
    assert _iters(tmp_path) == ['iter_4.pth', 'iter_6.pth']


# --------------------------------------------------- resume falls back
def _final_weight(runner):
    return runner.model.linear.weight.detach().clone()


def test_resume_skips_truncated_checkpoint(tmp_path):
    full = _runner(tmp_path / 'full', max_iters=6)
    full.train()
    work = tmp_path / 'work'
    _runner(work, max_iters=4).train()
    # iter_4 truncated as by a kill during a non-atomic save.
    data = (work / 'iter_4.pth').read_bytes()
    (work / 'iter_4.pth').write_bytes(data[:len(data) // 2])
    runner = _runner(work, max_iters=6, resume=True)
    runner.train()
    log = open(glob_log(work)).read()
    assert 'skipped' in log and 'iter_4.pth' in log and 'truncated' in log
    assert 'Auto resumed from' in log and 'iter_2.pth' in log
    assert runner.iter == 6
    # Same result as the uninterrupted run (same seed, data order kept).
    torch.testing.assert_close(_final_weight(runner), _final_weight(full))


def glob_log(work):
    logs = sorted(glob.glob(osp.join(str(work), '*', '*.log')))
    return logs[-1]


def test_resume_without_last_checkpoint_uses_newest_file(tmp_path):
    _runner(tmp_path, max_iters=4).train()
    os.remove(tmp_path / 'last_checkpoint')
    runner = _runner(tmp_path, max_iters=6, resume=True)
    runner.train()
    log = open(glob_log(tmp_path)).read()
    assert 'Auto resumed from' in log and 'iter_4.pth' in log
    assert 'Iter(train) [1/6]' not in log and 'Iter(train) [5/6]' in log


def test_resume_refuses_when_no_checkpoint_loads(tmp_path):
    _runner(tmp_path, max_iters=2).train()
    (tmp_path / 'iter_2.pth').write_bytes(b'')
    with pytest.raises(CheckpointError, match='none of the 1 checkpoints'):
        _runner(tmp_path, max_iters=4, resume=True).train()


# ------------------------------------------- strict and trusted loading
def _toy_state(tmp_path):
    runner = _runner(tmp_path / 'src')
    return {k: v.clone() for k, v in runner.model.state_dict().items()}


def test_load_from_is_strict(tmp_path):
    state = _toy_state(tmp_path)
    extra = dict(state, **{'head.weight': torch.ones(1)})
    torch.save(dict(state_dict=extra), tmp_path / 'extra.pth')
    with pytest.raises(CheckpointMismatchError,
                       match=r"extra\.pth.*head\.weight"):
        _runner(tmp_path / 'a', load_from=str(tmp_path / 'extra.pth'),
                max_iters=1).train()
    wrong = dict(state, **{'linear.weight': torch.ones(3, 2)})
    torch.save(dict(state_dict=wrong), tmp_path / 'shape.pth')
    with pytest.raises(CheckpointMismatchError, match='shape mismatch'):
        _runner(tmp_path / 'b', load_from=str(tmp_path / 'shape.pth'),
                max_iters=1).train()
    # Asked for: non-strict loading loads the matching part.
    runner = _runner(tmp_path / 'c', load_from=str(tmp_path / 'shape.pth'),
                     max_iters=1, strict_load=False)
    runner.train()
    assert runner.iter == 1


def _payload_files(tmp_path, state):
    marker = tmp_path / 'PAYLOAD_RAN'
    files = {}
    torch.save(dict(state_dict=dict(state, evil=_Payload(marker))),
               tmp_path / 'in_state.pth')
    files['state_dict'] = tmp_path / 'in_state.pth'
    torch.save(dict(state_dict=state, meta=dict(x=_Payload(marker))),
               tmp_path / 'in_meta.pth')
    files['meta'] = tmp_path / 'in_meta.pth'
    torch.save(dict(state_dict=state, meta=dict(x=_Payload(marker))),
               tmp_path / 'legacy.pth', _use_new_zipfile_serialization=False)
    files['legacy'] = tmp_path / 'legacy.pth'
    return marker, files


@pytest.mark.parametrize('kind', ['state_dict', 'meta', 'legacy'])
def test_untrusted_checkpoints_refused_by_load_from_and_resume(
        tmp_path, kind):
    marker, files = _payload_files(tmp_path, _toy_state(tmp_path))
    path = files[kind]
    with pytest.raises(UntrustedCheckpointError, match='is not trusted') as e:
        _runner(tmp_path / 'a', load_from=str(path), max_iters=1).train()
    assert 'weights_only' not in str(e.value)
    # --resume with a work dir whose newest checkpoint is the payload.
    work = tmp_path / 'w'
    _runner(work, max_iters=2).train()
    os.replace(path, work / 'iter_4.pth')
    (work / 'last_checkpoint').write_text(str(work / 'iter_4.pth'))
    with pytest.raises(UntrustedCheckpointError, match='iter_4.pth'):
        _runner(work, max_iters=6, resume=True).train()
    assert not marker.exists()


def test_untrusted_message_is_nucseg_s_not_torch_s(tmp_path):
    """The message is nucseg's, not torch's weights_only advice."""
    from nucseg.utils.checkpoint import load_trusted
    buf = io.BytesIO()
    torch.save({'x': _Payload(tmp_path / 'm')}, buf)
    (tmp_path / 'p.pth').write_bytes(buf.getvalue())
    with pytest.raises(UntrustedCheckpointError) as err:
        load_trusted(tmp_path / 'p.pth')
    assert 'posix.system' in str(err.value) or 'os.system' in str(err.value)
    assert 'weights_only' not in str(err.value)
    assert not (tmp_path / 'm').exists()
