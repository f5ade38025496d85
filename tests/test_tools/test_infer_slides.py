"""tools/infer.py on slides and large images: formats, pixel size, tissue,
resume, bad input, and tools/dist_infer.sh over 2 CPU ranks (issue 13).

The cheap haematoxylin-watershed model runs in-process; the 2-rank test
uses the demo U-Net (4 channels) with a checkpoint made here.
"""
import importlib.util
import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from nucseg.apis.exports import rasterize_geojson
from nucseg.evaluation.functional import instance_metrics
from nucseg.utils.io import read_label, write_image
from ..test_apis.synthetic_slides import (CLASSICAL, disc_image, h_threshold,
                                          place_discs, synthetic_slide,
                                          write_pyramid)
from .conftest import CONFIG

_TOOL = {}


def _infer(repo_root):
    if 'infer' not in _TOOL:
        spec = importlib.util.spec_from_file_location(
            '_nucseg_tool_infer_slides', repo_root / 'tools' / 'infer.py')
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _TOOL['infer'] = module
    return _TOOL['infer']


@pytest.fixture(scope='module')
def slide_dir(tmp_path_factory):
    """A 3-level tiled TIFF at 0.125 um/px: 512 px of synthetic tissue in
    a white glass margin."""
    img, _ = synthetic_slide(1, tissue=512, margin=(192, 448))
    folder = tmp_path_factory.mktemp('slides')
    write_pyramid(folder / 'case1.tif', img, mpp=0.125, levels=3, tile=128)
    return folder, img.shape[:2]


def test_slide_every_format_tissue_level_and_resume(repo_root, slide_dir,
                                                    tmp_path, capsys):
    folder, (h0, w0) = slide_dir
    out = tmp_path / 'out'
    argv = [str(repo_root / CLASSICAL), str(folder), '--out', str(out),
            '--format', 'geojson', 'csv', 'labels', 'overlay',
            '--tile-size', '128', '--overlap', '32', '--overlay-max-side',
            '256']
    assert _infer(repo_root).main(argv) == 0
    log = capsys.readouterr()
    assert sorted(p.name for p in out.iterdir()) == [
        'case1.csv', 'case1.geojson', 'case1.png', 'case1_overlay.png']
    line = next(x for x in log.out.splitlines() if 'case1.tif:' in x)
    # The model's 0.25 um/px is level 1 of the 0.125 um/px slide; tiles
    # without tissue are skipped and the processed fraction reported.
    assert '0.25 um/px (level 1' in line, line
    assert 'tissue ' in line and 'tiles processed' in line
    frac = float(line.split('tissue ')[1].split(' %')[0])
    assert 15 < frac < 45
    run, total = (int(v) for v in line.split('%: ')[1].split(
        ' tiles')[0].split(' of '))
    assert run < total
    assert 'labels: uint16 PNG' in line
    assert 'tile/s' in log.err  # the progress bar, named by the file
    assert 'case1.tif:' in log.err and '/case1.tif' not in log.err
    # Label map at level-0 size; GeoJSON in level-0 coordinates.
    labels = read_label(out / 'case1.png')
    assert labels.shape == (h0, w0) and labels.max() > 50
    feats = json.loads((out / 'case1.geojson').read_text())['features']
    assert len(feats) == len(np.unique(labels)) - 1
    xs = np.concatenate([np.asarray(f['geometry']['coordinates'][0])[:, 0]
                         for f in feats])
    assert xs.min() >= 448 - 1 and xs.max() <= 448 + 512 + 1
    back = rasterize_geojson(out / 'case1.geojson', labels.shape)
    assert instance_metrics(labels, back)['pq'] >= 0.9
    rows = (out / 'case1.csv').read_text().splitlines()
    assert len(rows) == len(feats) + 1
    assert Image.open(out / 'case1_overlay.png').size == (256, 163)
    # --resume: nothing to do, nothing rewritten.
    stamps = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    assert _infer(repo_root).main(argv + ['--resume']) == 0
    assert 'already have every output; skipped' in capsys.readouterr().out
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == stamps


def test_bad_inputs_are_named_and_the_rest_is_written(repo_root, tmp_path,
                                                      capsys):
    folder = tmp_path / 'in'
    folder.mkdir()
    rng = np.random.default_rng(0)
    img, _ = disc_image((200, 260), place_discs((200, 260), [], [], rng,
                                                random_count=40))
    write_image(folder / 'good.png', img)
    # 67600 one-pixel nuclei: more than a uint16 PNG holds.
    dots = np.full((520, 520, 3), 235, np.uint8)
    dots[::2, ::2] = (70, 50, 140)
    write_image(folder / 'dots.png', dots)
    write_image(folder / 'tiny.png', img[:20, :20])
    rgba = np.dstack([img, np.full(img.shape[:2], 255, np.uint8)])
    rgba[:, :100, 3] = 0
    Image.fromarray(rgba).save(folder / 'alpha.png')
    (folder / 'broken.svs').write_bytes(b'II*\x00' + b'\x00' * 200)
    write_pyramid(folder / 'blank.tif', np.full((256, 256, 3), 245,
                                                np.uint8), 0.25, 2, 64)
    out = tmp_path / 'out'
    code = _infer(repo_root).main([
        str(repo_root / CLASSICAL), str(folder), '--out', str(out),
        '--mpp', '0.25', '--no-progress', '--cfg-options',
        f'model.threshold={h_threshold()}', 'model.postprocessor.min_area=1',
        'model.postprocessor.hole_area=0'])
    log = capsys.readouterr()
    assert code == 1
    assert sorted(p.name for p in out.iterdir()) == [
        'alpha.png', 'dots.tif', 'good.png', 'tiny.png']
    err = log.err
    summary = err.strip().splitlines()[-1]
    assert summary.startswith('2 of 6 images failed')
    assert 'broken.svs' in summary and 'blank.tif' in summary
    broken = next(x for x in err.splitlines() if 'skipped broken.svs' in x)
    assert str(folder / 'broken.svs') in broken and 'cannot open' in broken
    blank = next(x for x in err.splitlines() if 'skipped blank.tif' in x)
    assert str(folder / 'blank.tif') in blank and 'no tissue' in blank
    assert any('tiny.png' in x and 'smaller than one tile' in x
               for x in err.splitlines())
    assert any('alpha.png' in x and 'composited on white' in x
               for x in err.splitlines())
    dots_line = next(x for x in log.out.splitlines() if 'dots.png:' in x)
    assert '67600 instances' in dots_line
    assert '32-bit TIFF (67600 instances exceed the 65535 of a uint16 ' \
        'PNG)' in dots_line and str(out / 'dots.tif') in dots_line
    assert read_label(out / 'dots.tif').max() == 67600
    alpha = read_label(out / 'alpha.png')
    assert alpha[:, :90].max() == 0 and alpha[:, 110:].max() > 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_dist_infer_two_ranks_equal_one_process(repo_root, tmp_path,
                                                capsys):
    from mmengine.config import Config

    from nucseg.datasets.synthetic import generate_sample
    from nucseg.registry import MODELS
    from nucseg.utils import register_all_modules
    register_all_modules()
    cfg = Config.fromfile(str(repo_root / CONFIG))
    opts = {'model.backbone.base_channels': 4,
            'model.decode_head.in_channels': 4,
            'model.decode_head.channels': 4}
    cfg.merge_from_dict(opts)
    torch.manual_seed(0)
    ckpt = tmp_path / 'tiny.pth'
    torch.save(dict(state_dict=MODELS.build(cfg.model).state_dict()), ckpt)
    folder = tmp_path / 'in'
    folder.mkdir()
    for i, size in enumerate((96, 160, 128, 200)):
        write_image(folder / f'img{i}.png',
                    generate_sample('he_kumar', size, i)[0])
    args = ['--checkpoint', str(ckpt), '--format', 'labels', 'geojson',
            '--tile-size', '128', '--overlap', '32', '--mpp', '0.5',
            '--no-progress', '--cfg-options'] + [
                f'{k}={v}' for k, v in opts.items()]
    single = tmp_path / 'single'
    assert _infer(repo_root).main([str(repo_root / CONFIG), str(folder),
                                   '--out', str(single)] + args) == 0
    capsys.readouterr()
    multi = tmp_path / 'multi'
    env = dict(os.environ, OMP_NUM_THREADS='1', PORT=str(_free_port()),
               PYTHON=sys.executable)
    proc = subprocess.run(
        ['bash', 'tools/dist_infer.sh', CONFIG, str(folder), '2', '--out',
         str(multi)] + args, cwd=repo_root, env=env, capture_output=True,
        text=True, timeout=600)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    names = sorted(p.name for p in single.iterdir())
    assert len(names) == 8 and sorted(p.name for p in multi.iterdir()) == \
        names
    for name in names:
        assert (single / name).read_bytes() == (multi / name).read_bytes()
    # Each image was processed by exactly one of the two ranks.
    for i in range(4):
        ranks = [r for r in (0, 1)
                 if f'[rank {r}] [' in log and any(
                     x.startswith(f'[rank {r}] [') and f'img{i}.png:' in x
                     for x in log.splitlines())]
        assert len(ranks) == 1, (i, log[-3000:])
    assert 'wrote 4 label map(s)' in log
