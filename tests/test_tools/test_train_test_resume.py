"""tools/train.py, tools/test.py and --resume, end to end on CPU."""
import glob
import json
import os.path as osp

import torch

from .conftest import CONFIG, run_tool, tiny_options


def test_train_test_and_resume(synthetic_he, repo_root, tmp_path):
    work = tmp_path / 'work'
    opts = tiny_options(synthetic_he, iters=4, interval=2)
    proc = run_tool(['tools/train.py', CONFIG, '--work-dir', str(work),
                     '--cfg-options', *opts], cwd=repo_root)
    assert osp.isfile(work / 'iter_4.pth')
    assert glob.glob(str(work / 'best_aji_iter_*.pth'))
    log = proc.stdout + proc.stderr
    assert 'aji' in log and 'loss_ce' in log

    # The checkpoint is an mmengine one with message hub state; it loads
    # with weights_only=True once nucseg's safe globals are registered.
    from nucseg.utils import register_safe_globals
    register_safe_globals()
    ckpt = torch.load(work / 'iter_4.pth', map_location='cpu',
                      weights_only=True)
    assert ckpt['meta']['iter'] == 4 and 'message_hub' in ckpt

    # Resume from iter_4 and continue to 6.
    opts6 = tiny_options(synthetic_he, iters=6, interval=2)
    proc = run_tool(['tools/train.py', CONFIG, '--work-dir', str(work),
                     '--resume', '--cfg-options', *opts6], cwd=repo_root)
    log = proc.stdout + proc.stderr
    assert 'resumed' in log.lower() and 'iter_4.pth' in log
    assert 'Iter(train) [5/6]' in log  # continued, not restarted
    assert 'Iter(train) [1/6]' not in log
    assert osp.isfile(work / 'iter_6.pth')

    # Evaluate the checkpoint; write metrics, overlays and label maps.
    out = tmp_path / 'preds'
    run_tool(['tools/test.py', CONFIG, str(work / 'iter_6.pth'),
              '--work-dir', str(tmp_path / 'test'), '--show-dir', 'vis',
              '--out', str(out), '--cfg-options', *opts], cwd=repo_root)
    metrics = json.loads((tmp_path / 'test' / 'metrics.json').read_text())
    for key in ('aji', 'aji_plus', 'pq', 'dice'):
        assert any(k.endswith(key) for k in metrics), metrics
    test_names = open(osp.join(synthetic_he, 'splits',
                               'test.txt')).read().split()
    assert sorted(p.stem for p in out.glob('*.png')) == sorted(test_names)
    panels = glob.glob(str(tmp_path / 'test' / '*' / 'vis' / '*.png'))
    assert len(panels) == len(test_names)

    # tools/infer.py on the raw test images (a folder with one broken
    # file) gives the same label maps as tools/test.py --out.
    import shutil
    import subprocess
    import sys

    from nucseg.utils.io import read_label
    inp = tmp_path / 'infer_in'
    inp.mkdir()
    for name in test_names:
        shutil.copy(osp.join(synthetic_he, 'images', f'{name}.png'), inp)
    (inp / 'broken.png').write_bytes(b'not a png')
    infer_out = tmp_path / 'infer_out'
    proc = subprocess.run(
        [sys.executable, 'tools/infer.py', CONFIG, str(inp), '--out',
         str(infer_out), '--checkpoint', str(work / 'iter_6.pth'),
         '--device', 'cpu', '--cfg-options', *opts],
        cwd=repo_root, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert 'broken.png' in proc.stderr
    assert sorted(p.stem for p in infer_out.glob('*.png')) == sorted(
        test_names)
    for name in test_names:
        a = read_label(infer_out / f'{name}.png')
        b = read_label(out / f'{name}.png')
        assert (a == b).all(), name
