"""kill -9 of a 2-process CPU training while a checkpoint is written.

The first run saves ``iter_2.pth``, then stalls half-way through writing
``iter_4.pth`` (a helper imported through the config's ``custom_imports``
writes half the bytes, fsyncs and sleeps); both workers and the launcher
are then killed with SIGKILL. ``--resume`` must continue from the last
complete checkpoint and end exactly where an uninterrupted run with the
same seed ends.
"""
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import torch

from .conftest import CONFIG, tiny_options
from .test_dist_train import _free_port, _run

STALL_HELPER = '''
import os
import time

from mmengine.fileio.backends import LocalBackend

open(os.path.join(os.environ['NUCSEG_TEST_PIDS'], str(os.getpid())),
     'w').close()
_put = LocalBackend.put


def _stalling_put(self, obj, filepath):
    if os.environ['NUCSEG_TEST_STALL_ON'] in os.path.basename(str(filepath)):
        with open(filepath, 'wb') as f:
            f.write(obj[:len(obj) // 2])
            f.flush()
            os.fsync(f.fileno())
        open(os.environ['NUCSEG_TEST_STALLED'], 'w').close()
        time.sleep(600)
    return _put(self, obj, filepath)


LocalBackend.put = _stalling_put
'''


def _options(data_root, iters):
    opts = tiny_options(data_root, iters=iters, interval=2)
    # Validation only at the end (same in every run); no best-checkpoint
    # bookkeeping needed.
    return [o for o in opts if not o.startswith('train_cfg.val_interval')
            ] + ['train_cfg.val_interval=1000']


def _losses(log):
    return re.findall(r'Iter\(train\) \[\s*(\d+)/\d+\].*? loss: ([\d.]+)',
                      log)


def _weights(path):
    from nucseg.utils.checkpoint import load_trusted
    return load_trusted(path)['state_dict']


def test_kill_during_checkpoint_write_then_resume(synthetic_he, repo_root,
                                                  tmp_path):
    opts = _options(synthetic_he, iters=6)
    # The uninterrupted reference run, started alongside the killed run.
    ref_out = open(tmp_path / 'ref.log', 'w')
    ref = subprocess.Popen(
        ['bash', 'tools/dist_train.sh', CONFIG, '2', '--work-dir',
         str(tmp_path / 'ref'), '--cfg-options', *opts], cwd=repo_root,
        env=dict(os.environ, OMP_NUM_THREADS='1', PORT=str(_free_port()),
                 PYTHON=sys.executable),
        stdout=ref_out, stderr=subprocess.STDOUT)

    # The run that is killed while iter_4.pth is being written.
    helper_dir = tmp_path / 'helper'
    (helper_dir / 'pids').mkdir(parents=True)
    (helper_dir / 'stall_save.py').write_text(STALL_HELPER)
    cfg = helper_dir / 'stall_cfg.py'
    cfg.write_text(f'_base_ = [{str(repo_root / CONFIG)!r}]\n'
                   "custom_imports = dict(imports=['stall_save'], "
                   'allow_failed_imports=False)\n')
    try:
        _kill_then_resume(repo_root, helper_dir, cfg, opts, tmp_path, ref,
                          ref_out)
    finally:
        if ref.poll() is None:
            ref.kill()


def _kill_then_resume(repo_root, helper_dir, cfg, opts, tmp_path, ref,
                      ref_out):
    work = tmp_path / 'work'
    stalled = helper_dir / 'stalled'
    env = dict(os.environ, OMP_NUM_THREADS='1', PORT=str(_free_port()),
               PYTHON=sys.executable,
               PYTHONPATH=f'{helper_dir}{os.pathsep}'
               + os.environ.get('PYTHONPATH', ''),
               NUCSEG_TEST_PIDS=str(helper_dir / 'pids'),
               NUCSEG_TEST_STALL_ON='iter_4.pth',
               NUCSEG_TEST_STALLED=str(stalled))
    out = open(helper_dir / 'killed_run.log', 'w')
    proc = subprocess.Popen(
        ['bash', 'tools/dist_train.sh', str(cfg), '2', '--work-dir',
         str(work), '--cfg-options', *opts], cwd=repo_root, env=env,
        stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.time() + 400
        while not stalled.exists():
            if proc.poll() is not None or time.time() > deadline:
                out.flush()
                text = (helper_dir / 'killed_run.log').read_text()
                pytest.fail(f'the run never reached the iter_4 save:\n'
                            f'{text[-4000:]}')
            time.sleep(0.2)
    finally:
        # kill -9 the two training processes (each in its own session)
        # and the launcher.
        for pid_file in (helper_dir / 'pids').iterdir():
            try:
                os.kill(int(pid_file.name), signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=60)
        out.close()
    assert ref.wait(timeout=600) == 0, (tmp_path / 'ref.log').read_text()[
        -4000:]
    ref_out.close()
    ref_log = (tmp_path / 'ref.log').read_text()
    assert len(list((helper_dir / 'pids').iterdir())) == 2
    assert (work / 'iter_2.pth').is_file()
    assert not (work / 'iter_4.pth').is_file()  # never a truncated one

    log = _run(['bash', 'tools/dist_train.sh', CONFIG, '2', '--work-dir',
                str(work), '--resume', '--cfg-options', *opts], repo_root)
    assert re.search(r'Auto resumed from \S*iter_2\.pth', log), log[-3000:]
    resumed = dict(_losses(log))
    assert '3' in resumed and '1' not in resumed  # continued, not restarted
    reference = dict(_losses(ref_log))
    assert resumed['6'] == reference['6'], (resumed, reference)
    a, b = _weights(work / 'iter_6.pth'), _weights(tmp_path / 'ref' /
                                                   'iter_6.pth')
    for key in b:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6)
