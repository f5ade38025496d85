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
    model = init_model(_test_cfg(repo_root, WEIGHTFREE), device='cpu')
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
