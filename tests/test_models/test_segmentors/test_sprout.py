"""SPROUT end to end on synthetic H&E: both configs, test/infer paths."""
import numpy as np
import pytest
import torch
from mmengine.config import Config

from nucseg.apis import inference_model, init_model
from nucseg.evaluation.functional import instance_metrics
from nucseg.utils.io import read_label

# The SAM stage runs SAM's full-size decoder per prompt (tiny encoder).
pytestmark = pytest.mark.usefixtures('torch_one_thread')

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
    # The config's pixel sizes are for 40x H&E (0.25 um/px): the synthetic
    # tile, nominally 20x (0.5 um/px), is upsampled 2x to that scale by
    # the inferencer (and the prediction resized back).
    model = init_model(_test_cfg(repo_root, WEIGHTFREE, 512), device='cpu')
    img, lab = he_image
    inst = inference_model(model, img, mpp=0.5)
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
         str(out), '--overlay', '--mpp', '0.5'],
        cwd=repo_root, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    pred = read_label(out / 'tile.png')
    assert pred.shape == read_label(lab).shape and pred.max() > 0
    assert (out / 'tile_overlay.png').is_file()
    # Same result as the Python API on the same image.
    model = init_model(_test_cfg(repo_root, WEIGHTFREE, 512), device='cpu')
    np.testing.assert_array_equal(pred, inference_model(model, img,
                                                        mpp=0.5))


def _two_nuclei_image(path):
    """128 px pink tissue with two dark nuclei (r = 10) 28 px apart."""
    from nucseg.utils.io import write_image
    yy, xx = np.mgrid[:128, :128]
    disk_a = (xx - 50)**2 + (yy - 64)**2 <= 100
    disk_b = (xx - 78)**2 + (yy - 64)**2 <= 100
    img = np.empty((128, 128, 3), np.uint8)
    img[:] = (235, 170, 200)  # eosin-pink
    img[disk_a | disk_b] = (70, 50, 140)  # haematoxylin
    write_image(path, img)
    return disk_a, disk_b


def test_sam_config_keeps_what_alg3_keeps(repo_root, tmp_path, monkeypatch):
    """The paper-setting SPROUT config end to end (tiny random SAM) on an
    image whose candidate masks overlap: SAM's decoder is replaced by a
    stub that answers every prompt inside a nucleus with that nucleus
    (score 0.9) and adds, once per patch, a mask covering both nuclei and
    the tissue bridge between them (score 0.95, the best SAM score).

    By hand (Alg. 3, official settings): both nuclei lie > 90 % inside the
    big mask and score > 0.5, so it holds n = 2 nuclei and its score is
    scaled by 1 - tanh(0.5 * 2) = 0.238 (0.7 * 0.95 + 0.3 * h < 1, so
    below 0.24); each nucleus (0.7 * 0.9 + 0.3 * h_nucleus >= 0.63) is
    kept first; the big mask's box overlaps nucleus A's, its score decays
    further and falls below tau = 0.5: it is dropped. Output: exactly the
    two nuclei. Without the NMS, the big mask (best score, painted last)
    would swallow both."""
    from nucseg.models.mask_generators.candidates import InstanceCandidates
    from nucseg.models.mask_generators.sam_point_masks import \
        SAMPointMaskGenerator
    path = tmp_path / 'two.png'
    disk_a, disk_b = _two_nuclei_image(path)
    bridge = np.zeros_like(disk_a)
    bridge[60:69, 56:73] = True
    union = disk_a | disk_b | bridge
    calls = []

    def stub(self, emb, coords, labels):
        h, w = emb.original_size
        masks, scores = [], []
        for c in coords:
            x, y = (int(round(v)) for v in c[0])
            for disk in (disk_a, disk_b):
                if 0 <= y < h and 0 <= x < w and disk[y, x]:
                    masks.append(disk)
                    scores.append(0.9)
        masks.append(union)
        scores.append(0.95)
        calls.append(len(coords))
        return InstanceCandidates.from_masks(masks, scores, (h, w))

    monkeypatch.setattr(SAMPointMaskGenerator, 'predict_prompts', stub)
    cfg = _test_cfg(repo_root, SAM, 128)
    ext, gen = cfg.model.extractor, cfg.model.mask_generator
    ext.backbone.update(arch='tiny', checkpoint=None, image_size=64)
    ext.update(tile=32, tile_stride=16, input_size=64)
    # One 128 px patch = the whole image (no inner patch borders).
    gen.update(arch='tiny', checkpoint=None, image_size=256, patch_size=128)
    torch.manual_seed(0)
    model = init_model(cfg, device='cpu')
    inst = inference_model(model, path)
    assert calls and calls[0] > 0  # prompts reached the (stub) decoder
    assert inst.max() == 2
    found = sorted((inst == k for k in (1, 2)),
                   key=lambda m: np.argwhere(m)[:, 1].mean())
    np.testing.assert_array_equal(found[0], disk_a)
    np.testing.assert_array_equal(found[1], disk_b)

    def has_union():
        cands = model.last_state['candidates']
        return any(np.array_equal(cands.mask(k), union)
                   for k in range(len(cands)))

    # The per-patch pass already removed the big mask ...
    assert not has_union()
    # ... and the whole-image pass alone removes it too.
    model.mask_generator.patch_nms = None
    np.testing.assert_array_equal(inference_model(model, path), inst)
    assert has_union()
    model.nms = None
    merged = inference_model(model, path)
    assert merged.max() == 1 and (merged > 0).sum() == union.sum()


@pytest.mark.parametrize('field,key', [('points', 'sigmma'),
                                       ('priors', 'top'),
                                       ('cleanup', 'hole_size'),
                                       ('activation', 'slack_to_fg')])
def test_misspelt_option_keys_are_refused(repo_root, field, key):
    """``--cfg-options model.points.sigmma=8`` must not be ignored."""
    from nucseg.utils.config_check import UnknownKeyError
    cfg = _test_cfg(repo_root, WEIGHTFREE, 64)
    cfg.model[field][key] = 1
    with pytest.raises(UnknownKeyError, match=rf"SPROUT.{field}.*'{key}'"):
        init_model(cfg, device='cpu')
