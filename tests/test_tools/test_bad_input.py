"""tools/infer.py, test.py and train.py on bad input (issue 9).

The tools run in-process (their ``main(argv)``) with the demo U-Net made
4 channels wide, so each call takes about a second.
"""
import hashlib
import importlib.util
import json
import os
import struct
import uuid
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from nucseg.utils.io import read_label, write_image
from .conftest import CONFIG, tiny_options

MODEL_OPTS = {
    'model.backbone.base_channels': 4,
    'model.decode_head.in_channels': 4,
    'model.decode_head.channels': 4,
}
CLI_MODEL_OPTS = [f'{k}={v}' for k, v in MODEL_OPTS.items()]
_TOOLS = {}


def _tool(repo_root, name):
    if name not in _TOOLS:
        spec = importlib.util.spec_from_file_location(
            f'_nucseg_tool_{name}', repo_root / 'tools' / f'{name}.py')
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _TOOLS[name] = module
    return _TOOLS[name]


@pytest.fixture(scope='module')
def tiny_ckpt(tmp_path_factory, repo_root):
    """A checkpoint of the tiny U-Net (random weights, seeded)."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from nucseg.registry import MODELS
    from nucseg.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    init_default_scope('nucseg')
    cfg = Config.fromfile(str(repo_root / CONFIG))
    cfg.merge_from_dict(MODEL_OPTS)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    path = tmp_path_factory.mktemp('ckpt') / 'tiny.pth'
    torch.save(dict(state_dict=model.state_dict(), meta=dict(iter=0)), path)
    return path


class _Payload:
    """Unpickling it would create ``path`` (it must never run)."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (os.system, (f'touch {self.path}', ))


def _png_chunk(kind: bytes, data: bytes, crc=None) -> bytes:
    crc = zlib.crc32(kind + data) if crc is None else crc
    return struct.pack('>I', len(data)) + kind + data + struct.pack(
        '>I', crc & 0xffffffff)


def _png(width, height, bad_crc=False) -> bytes:
    ihdr = struct.pack('>IIBBBBB', width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b'\0' * (1 + max(width, 1)) * min(height, 4))
    return (b'\x89PNG\r\n\x1a\n' +
            _png_chunk(b'IHDR', ihdr, 1 if bad_crc else None) +
            _png_chunk(b'IDAT', idat) + _png_chunk(b'IEND', b''))


def _write_bad_files(folder) -> list:
    """Ten unreadable images of different kinds; returns their names."""
    good = folder / 'good_000.png'
    data = good.read_bytes()
    buf = folder / 'tmp.jpg'
    Image.open(good).save(buf, quality=90)
    jpg = buf.read_bytes()
    buf.unlink()
    bad = {
        'bad_empty.png': b'',
        'bad_text.png': b'just some text, not an image\n',
        'bad_truncated.png': data[:len(data) // 2],
        'bad_cut.jpg': jpg[:len(jpg) // 2],
        'bad_html.tif': b'<html><body>404 Not Found</body></html>',
        'bad_bomb_header.png': _png(60000, 60000),
        'bad_crc.png': _png(8, 8, bad_crc=True),
        'bad_zero_width.png': _png(0, 8),
    }
    for name, blob in bad.items():
        (folder / name).write_bytes(blob)
    nan = np.full((16, 16), np.nan, np.float32)
    Image.fromarray(nan, mode='F').save(folder / 'bad_nan.tif')
    (folder / 'bad_link.png').symlink_to(folder / 'missing_target.png')
    return sorted(list(bad) + ['bad_nan.tif', 'bad_link.png'])


def _digest(folder) -> dict:
    """Content hash (link target for links) of every entry under
    ``folder``."""
    out = {}
    for p in sorted(folder.rglob('*')):
        key = p.relative_to(folder).as_posix()
        if p.is_symlink():
            out[key] = os.readlink(p)
        elif p.is_dir():
            out[key] = 'dir'
        else:
            out[key] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def test_folder_of_50_with_10_bad_images(tiny_ckpt, repo_root, tmp_path,
                                         capsys):
    folder = tmp_path / 'in'
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(40):
        h, w = (32, 40) if i % 2 else (24, 36)  # not multiples of 16
        write_image(folder / f'good_{i:03d}.png',
                    rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    bad = _write_bad_files(folder)
    assert len(bad) == 10 and len(list(folder.iterdir())) == 50
    before = _digest(folder)
    out = tmp_path / 'out'
    code = _tool(repo_root, 'infer').main([
        str(repo_root / CONFIG), str(folder), '--out', str(out),
        '--checkpoint', str(tiny_ckpt), '--device', 'cpu', '--cfg-options',
        *CLI_MODEL_OPTS
    ])
    captured = capsys.readouterr()
    assert code == 1
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f'good_{i:03d}.png' for i in range(40))
    summary = captured.err.strip().splitlines()[-1]
    assert summary.startswith('10 of 50 images failed')
    for name in bad:
        assert name in summary, name
        line = next(x for x in captured.err.splitlines()
                    if f'skipped {name}:' in x)
        assert str(folder / name) in line, line
    assert 'exceeds nucseg' in captured.err  # the 60000x60000 header
    assert _digest(folder) == before  # no input touched, nothing added
    assert 'wrote 40 label map(s)' in captured.out
    assert 'loading model of' in captured.out and 'ready on' in captured.out


def test_infer_never_overwrites_and_names_uniquely(tiny_ckpt, repo_root,
                                                   tmp_path, capsys):
    infer = _tool(repo_root, 'infer')
    folder = tmp_path / 'in'
    img = np.random.default_rng(1).integers(0, 256, (32, 32, 3), np.uint8)
    write_image(folder / 'x.png', img)
    Image.fromarray(img).save(folder / 'x.tif')
    write_image(folder / 'sub' / 'y.png', img)
    before = _digest(folder)
    args = ['--checkpoint', str(tiny_ckpt), '--device', 'cpu',
            '--cfg-options', *CLI_MODEL_OPTS]
    # --out = the input folder, or an output that would replace an input
    # image: refused before anything is written.
    code = infer.main([str(repo_root / CONFIG), str(folder), '--out',
                       str(folder), *args])
    assert code == 2 and 'is the input folder' in capsys.readouterr().err
    code = infer.main([str(repo_root / CONFIG), str(folder / 'x.png'),
                       '--out', str(folder), *args])
    err = capsys.readouterr().err
    assert code == 2 and 'would overwrite 1 input' in err and 'x.png' in err
    code = infer.main([str(repo_root / CONFIG), str(folder), '--out',
                       str(folder / 'sub'), '--recursive', *args])
    assert code == 2 and 'inside the input folder' in capsys.readouterr(
    ).err
    assert _digest(folder) == before

    out = tmp_path / 'out'
    assert infer.main([str(repo_root / CONFIG), str(folder), '--out',
                       str(out), '--overlay', *args]) == 0
    log = capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == [
        'x_png.png', 'x_png_overlay.png', 'x_tif.png', 'x_tif_overlay.png']
    assert 'x.png -> x_png.png' in log and 'x.tif -> x_tif.png' in log
    assert "1 sub-folder(s)" in log and '--recursive' in log
    assert (read_label(out / 'x_png.png') == read_label(
        out / 'x_tif.png')).all()

    out2 = tmp_path / 'out2'
    assert infer.main([str(repo_root / CONFIG), str(folder), '--out',
                       str(out2), '--recursive', *args]) == 0
    assert (out2 / 'sub' / 'y.png').is_file()
    assert _digest(folder) == before


def test_count_instances_is_not_the_max_id():
    from nucseg.apis import count_instances
    assert count_instances(np.array([[0, 3], [8, 8]])) == 2
    assert count_instances(np.zeros((2, 2), int)) == 0


def test_infer_refuses_random_and_mismatched_weights(tiny_ckpt, repo_root,
                                                     tmp_path, capsys):
    infer = _tool(repo_root, 'infer')
    img = tmp_path / 'a.png'
    write_image(img, np.zeros((16, 16, 3), np.uint8))
    base = [str(repo_root / CONFIG), str(img), '--device', 'cpu',
            '--cfg-options', *CLI_MODEL_OPTS]
    assert infer.main(base + ['--out', str(tmp_path / 'o1')]) == 2
    err = capsys.readouterr().err
    assert 'must be trained' in err and 'random weights' in err
    assert not (tmp_path / 'o1' / 'a.png').exists()
    assert infer.main(base + ['--out', str(tmp_path / 'o2'),
                              '--allow-random-weights']) == 0

    state = torch.load(tiny_ckpt, weights_only=True)['state_dict']
    key = next(k for k in state if k.endswith('conv_seg.weight'))
    state[key] = torch.zeros(5, *state[key].shape[1:])
    torch.save(dict(state_dict=state), tmp_path / 'wrong.pth')
    assert infer.main(base + ['--out', str(tmp_path / 'o3'), '--checkpoint',
                              str(tmp_path / 'wrong.pth')]) == 2
    err = capsys.readouterr().err
    assert 'shape mismatch' in err and key in err and 'wrong.pth' in err
    assert infer.main(base + ['--out', str(tmp_path / 'o4'), '--checkpoint',
                              str(tmp_path / 'wrong.pth'),
                              '--non-strict']) == 0

    marker = tmp_path / 'PAYLOAD_RAN'
    state = torch.load(tiny_ckpt, weights_only=True)['state_dict']
    torch.save(dict(state_dict=dict(state, x=_Payload(marker))),
               tmp_path / 'evil.pth')
    assert infer.main(base + ['--out', str(tmp_path / 'o5'), '--checkpoint',
                              str(tmp_path / 'evil.pth')]) == 2
    err = capsys.readouterr().err
    assert 'evil.pth is not trusted' in err and 'weights_only' not in err
    assert not marker.exists()


def _unique():
    return f'experiment_name=t{uuid.uuid4().hex[:10]}'


def test_test_tool_checkpoints_metrics_and_output_dirs(
        tiny_ckpt, synthetic_he, repo_root, tmp_path, capsys):
    test = _tool(repo_root, 'test')
    opts = tiny_options(synthetic_he)
    # No checkpoint for a model that must be trained: refused, no file.
    code = test.main([str(repo_root / CONFIG), '--work-dir',
                      str(tmp_path / 'a'), '--cfg-options', *opts,
                      _unique()])
    assert code == 1 and 'must be trained' in capsys.readouterr().err
    assert not (tmp_path / 'a' / 'metrics.json').exists()

    # An untrusted checkpoint (payload in meta): refused, nothing run.
    marker = tmp_path / 'PAYLOAD_RAN'
    state = torch.load(tiny_ckpt, weights_only=True)['state_dict']
    torch.save(dict(state_dict=state, meta=dict(x=_Payload(marker))),
               tmp_path / 'evil.pth')
    code = test.main([str(repo_root / CONFIG), str(tmp_path / 'evil.pth'),
                      '--work-dir', str(tmp_path / 'b'), '--cfg-options',
                      *opts, _unique()])
    assert code == 1 and 'is not trusted' in capsys.readouterr().err
    assert not marker.exists()

    # All-zero weights predict no nucleus: the Hausdorff distance is
    # infinite and must be written as null (valid JSON).
    zero = {k: torch.zeros_like(v) if v.is_floating_point() else v
            for k, v in state.items()}
    torch.save(dict(state_dict=zero), tmp_path / 'zero.pth')
    work = tmp_path / 'c'
    code = test.main([str(repo_root / CONFIG), str(tmp_path / 'zero.pth'),
                      '--work-dir', str(work), '--out', 'maps',
                      '--show-dir', 'vis', '--cfg-options', *opts,
                      _unique()])
    out = capsys.readouterr().out
    assert code == 0
    text = (work / 'metrics.json').read_text()
    metrics = json.loads(text, parse_constant=lambda c: pytest.fail(c))
    assert metrics['pixel/hausdorff'] is None and 'Infinity' not in text
    # Relative --out and --show-dir both land in <work_dir>/<timestamp>/.
    runs = [p for p in work.iterdir() if p.is_dir()]
    assert len(runs) == 1
    assert len(list((runs[0] / 'maps').glob('*.png'))) == 2
    assert len(list((runs[0] / 'vis').glob('*.png'))) == 2
    assert f'instance maps: {runs[0] / "maps"}' in out
    assert f'overlays: {runs[0] / "vis"}' in out


def test_train_tool_nan_and_untrusted(tiny_ckpt, synthetic_he, repo_root,
                                      tmp_path, capsys):
    train = _tool(repo_root, 'train')
    opts = tiny_options(synthetic_he, iters=2, interval=1)
    # NaN loss from the first iteration: stopped, nothing saved.
    work = tmp_path / 'nan'
    code = train.main([
        str(repo_root / CONFIG), '--work-dir', str(work), '--cfg-options',
        *opts, 'model.decode_head.loss_decode.0.class_weight=[nan,1,2]',
        _unique()
    ])
    err = capsys.readouterr().err
    assert code == 1
    assert 'non-finite loss at iteration 1: decode.loss_ce=nan' in err
    assert not list(work.glob('*.pth'))
    assert not (work / 'last_checkpoint').exists()

    # load_from a legacy-format checkpoint with a payload: refused.
    marker = tmp_path / 'PAYLOAD_RAN'
    state = torch.load(tiny_ckpt, weights_only=True)['state_dict']
    torch.save(dict(state_dict=state, meta=dict(x=_Payload(marker))),
               tmp_path / 'legacy.pth', _use_new_zipfile_serialization=False)
    code = train.main([
        str(repo_root / CONFIG), '--work-dir', str(tmp_path / 'lf'),
        '--cfg-options', *opts, f'load_from={tmp_path / "legacy.pth"}',
        _unique()
    ])
    assert code == 1 and 'legacy.pth is not trusted' in capsys.readouterr(
    ).err
    # --resume whose newest checkpoint carries a payload: refused.
    work = tmp_path / 'res'
    work.mkdir()
    torch.save(dict(state_dict=dict(state, x=_Payload(marker))),
               work / 'iter_2.pth')
    (work / 'last_checkpoint').write_text(str(work / 'iter_2.pth'))
    code = train.main([
        str(repo_root / CONFIG), '--work-dir', str(work), '--resume',
        '--cfg-options', *opts, _unique()
    ])
    assert code == 1 and 'iter_2.pth is not trusted' in capsys.readouterr(
    ).err
    assert not marker.exists()
