"""SPROUT end to end on synthetic H&E: both configs, test/infer paths."""
import numpy as np
import pytest
import torch
from mmengine.config import Config

from nucseg.apis import inference_model, init_model
from nucseg.evaluation.functional import instance_metrics
from nucseg.utils.io import read_label

WEIGHTFREE = 'configs/sprout/sprout_weightfree.py'
SAM = 'configs/sprout/sprout_sam_vit_l.py'


@pytest.fixture(scope='module')
def he_image(tmp_path_factory):
    """One 256 px synthetic H&E image and its labels."""
    from nucseg.datasets.synthetic import make_dataset
    root = tmp_path_factory.mktemp('sprout') / 'he'
    make_dataset(str(root), domain='he_kumar', num=1, size=256, seed=3,
                 splits=(0.0, 0.0, 1.0))
    name = (root / 'splits' / 'test.txt').read_text().split()[0]
    return root / 'images' / f'{name}.png', root / 'labels' / f'{name}.png'


def _test_cfg(repo_root, path, size=256):
    cfg = Config.fromfile(repo_root / path)
    cfg.test_dataloader.dataset.pipeline[1].scale = (size, size)
    return cfg


def test_weightfree_segments_synthetic_nuclei(repo_root, he_image):
    # The config's pixel sizes are for 40x H&E: the synthetic tile is
    # upsampled 2x to that scale (and the prediction resized back).
    model = init_model(_test_cfg(repo_root, WEIGHTFREE, 512), device='cpu')
    img, lab = he_image
    inst = inference_model(model, img)
    gt = read_label(lab)
    assert inst.shape == gt.shape and inst.dtype == np.int32
    m = instance_metrics(gt, inst)
    assert m['aji'] > 0.5 and m['dice'] > 0.7, m
    state = model.last_state
    # Scan bookkeeping: rho on the grid, mass of the kept plan = rho.
    scan = state['scan']
    assert scan.rho >= 0.6 - 1e-9
    assert float(scan.plan.sum()) == pytest.approx(scan.rho, abs=1e-4)
    assert len(state['pos']) > 0 and len(state['neg']) > 0
    # Training is refused with a clear message.
    with pytest.raises(RuntimeError, match='training-free'):
        model.loss(torch.zeros(1, 3, 8, 8), [])


def test_sam_config_runs_with_tiny_random_sam(repo_root, he_image):
    """The paper-setting config, shrunk to a random tiny SAM: the SAM
    point-prompt mask stage and tiled SAM features run end to end."""
    cfg = _test_cfg(repo_root, SAM)
    ext, gen = cfg.model.extractor, cfg.model.mask_generator
    ext.backbone.update(arch='tiny', checkpoint=None, image_size=64)
    ext.update(tile=32, tile_stride=16, input_size=64)
    gen.update(arch='tiny', checkpoint=None, image_size=256, patch_size=128)
    torch.manual_seed(0)
    model = init_model(cfg, device='cpu')
    img, lab = he_image
    inst = inference_model(model, img)
    assert inst.shape == read_label(lab).shape
    cands = model.last_state['candidates']
    assert type(model.mask_generator).__name__ == 'SAMPointMaskGenerator'
    areas = cands.areas
    assert ((areas >= 50) & (areas <= 20000)).all()


def test_blank_image_gives_no_instances(repo_root, tmp_path):
    from nucseg.utils.io import write_image
    path = tmp_path / 'blank.png'
    write_image(path, np.full((64, 64, 3), 240, np.uint8))
    model = init_model(_test_cfg(repo_root, WEIGHTFREE, 64), device='cpu')
    inst = inference_model(model, path)
    assert inst.shape == (64, 64) and inst.max() == 0


def test_infer_cli_with_the_weightfree_config(repo_root, he_image,
                                              tmp_path):
    """``tools/infer.py configs/sprout/sprout_weightfree.py`` needs no
    download and no checkpoint; writes uint16 label maps per image."""
    import shutil
    import subprocess
    import sys
    inp = tmp_path / 'in'
    inp.mkdir()
    img, lab = he_image
    shutil.copy(img, inp / 'tile.png')
    out = tmp_path / 'out'
    proc = subprocess.run(
        [sys.executable, 'tools/infer.py', WEIGHTFREE, str(inp), '--out',
         str(out), '--overlay', '--cfg-options',
         'test_dataloader.dataset.pipeline.1.scale=(512,512)'],
        cwd=repo_root, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    pred = read_label(out / 'tile.png')
    assert pred.shape == read_label(lab).shape and pred.max() > 0
    assert (out / 'tile_overlay.png').is_file()
    # Same result as the Python API on the same image.
    model = init_model(_test_cfg(repo_root, WEIGHTFREE, 512), device='cpu')
    np.testing.assert_array_equal(pred, inference_model(model, img))
