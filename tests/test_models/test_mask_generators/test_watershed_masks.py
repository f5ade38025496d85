import numpy as np
import pytest

from nucseg.evaluation.functional import instance_metrics
from nucseg.models.mask_generators.watershed_masks import (
    WatershedMaskGenerator, disk_markers)
from nucseg.registry import TASK_UTILS


def _disks(shape=(128, 128), seed=0, n=14):
    """Disks of radius 6-10, some touching; centres and label map."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    lab = np.zeros(shape, np.int32)
    centres = []
    while len(centres) < n:
        r = rng.uniform(6, 10)
        cx, cy = rng.uniform(r + 2, shape[1] - r - 2, 2)
        # Allow touching (distance >= 0.8 (r1 + r2)), avoid deep overlap.
        if any(np.hypot(cx - x, cy - y) < 0.8 * (r + q)
               for x, y, q in centres):
            continue
        disk = ((xx - cx)**2 + (yy - cy)**2 <= r * r) & (lab == 0)
        lab[disk] = len(centres) + 1
        centres.append((cx, cy, r))
    pos = np.array([(x, y) for x, y, _ in centres])
    return lab, pos


def _background_grid(lab, step=12):
    yy, xx = np.mgrid[step // 2:lab.shape[0]:step, step // 2:lab.shape[1]:
                      step]
    grid = np.stack([xx.ravel(), yy.ravel()], 1)
    return grid[lab[grid[:, 1], grid[:, 0]] == 0].astype(np.float64)


def _render(lab, seed=0):
    """Purple nuclei on pink background (H&E-like RGB)."""
    rng = np.random.default_rng(seed)
    img = np.empty(lab.shape + (3, ), np.float64)
    img[:] = (235, 190, 215)
    img[lab > 0] = (90, 60, 150)
    img += rng.normal(0, 6, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.mark.parametrize('elevation', ['distance', 'h_gradient'])
def test_recovers_synthetic_disks(elevation):
    lab, pos = _disks()
    neg = _background_grid(lab)
    gen = WatershedMaskGenerator(elevation=elevation, min_area=20)
    cands = gen(_render(lab), pos, neg, fg_mask=lab > 0)
    assert len(cands) == len(pos)
    aji = instance_metrics(lab, cands.to_label_map())['aji']
    assert aji > 0.9, aji
    # Solidity of (near-)disks is close to 1.
    assert cands.scores.min() > 0.85 and cands.scores.max() <= 1.0


def test_solidity_score_and_area_filters():
    lab = np.zeros((64, 64), np.int32)
    lab[5:25, 5:25] = 1  # square: solidity 1
    lab[30:60, 30:36] = 2  # L-shape: solidity < 1
    lab[54:60, 30:60] = 2
    lab[5:9, 40:44] = 3  # 16 px: below min_area
    pos = np.array([[15, 15], [33, 40], [42, 7]], float)
    gen = WatershedMaskGenerator(min_area=20, max_area=1000)
    c = gen(None, pos, None, fg_mask=lab > 0)
    assert len(c) == 2
    assert c.scores[0] == pytest.approx(1.0)
    assert 0.3 < c.scores[1] < 0.8
    assert c.areas.tolist() == [400, 324]
    c2 = WatershedMaskGenerator(min_area=20, max_area=350)(
        None, pos, None, fg_mask=lab > 0)
    assert c2.areas.tolist() == [324]


def test_negative_points_and_unseeded_components():
    lab, pos = _disks(seed=1, n=6)
    fg = lab > 0
    extra = np.zeros_like(fg)
    extra[2:12, 2:12] = True  # a foreground blob without any marker
    fg_x = fg | extra
    gen = WatershedMaskGenerator(min_area=1)
    base = gen(None, pos, None, fg_mask=fg_x)
    assert len(base) == 6 and not base.to_label_map()[extra].any()
    keep = WatershedMaskGenerator(min_area=1, keep_unseeded=True)(
        None, pos, None, fg_mask=fg_x)
    assert len(keep) == 7 and keep.to_label_map()[extra].all()
    # A negative point inside a nucleus takes part of it for background.
    neg = np.array([pos[0] + [4.0, 0.0]])
    cut = gen(None, pos, neg, fg_mask=fg)
    assert len(cut) == 6
    assert cut.areas[0] < (lab == 1).sum()
    # The positive marker wins where a negative disk overlaps it.
    same = gen(None, pos[:1], pos[:1], fg_mask=fg)
    assert len(same) == 1


def test_inputs_and_registry():
    gen = TASK_UTILS.build(dict(type='WatershedMaskGenerator'))
    fg = np.zeros((32, 32), bool)
    with pytest.raises(ValueError, match='fg_mask'):
        gen(None, np.zeros((1, 2)), None)
    assert len(gen(None, np.zeros((0, 2)), None, fg_mask=fg)) == 0
    assert len(gen(None, np.array([[5.0, 5.0]]), None, fg_mask=fg)) == 0
    with pytest.raises(ValueError, match='pos_points'):
        gen(None, np.zeros((3, 3)), None, fg_mask=fg)
    with pytest.raises(ValueError, match='h_gradient'):
        WatershedMaskGenerator(elevation='h_gradient')(
            None, np.array([[5.0, 5.0]]), None, fg_mask=~fg)
    with pytest.raises(ValueError, match='elevation'):
        WatershedMaskGenerator(elevation='sobel')
    m = disk_markers((9, 9), np.array([[4, 4], [0, 0]]), 1,
                     np.array([1, 2]))
    assert (m == 1).sum() == 5 and (m == 2).sum() == 3


def test_refinement_fills_holes_and_smooths_without_stealing():
    from nucseg.models.mask_generators.watershed_masks import \
        refine_instances
    inst = np.zeros((40, 60), np.int32)
    inst[5:25, 5:25] = 1
    inst[12:16, 12:16] = 0  # a hole
    inst[5:25, 25:45] = 2   # touching neighbour
    inst[30, 50] = 0
    out = refine_instances(inst, fill_holes=True, smooth_sigma=0.0)
    assert (out[12:16, 12:16] == 1).all()
    assert (out[inst == 2] == 2).all()
    smooth = refine_instances(inst, fill_holes=True, smooth_sigma=2.0)
    # Smoothing rounds corners but never takes the neighbour's pixels.
    assert (smooth[inst == 2] != 1).all()
    assert smooth[5, 5] == 0 and smooth[15, 15] == 1


def test_generator_smoothed_distance_and_unseeded_components():
    from nucseg.models.mask_generators import WatershedMaskGenerator
    yy, xx = np.mgrid[:64, :64]
    fg = ((yy - 20)**2 + (xx - 20)**2 <= 100) | (
        (yy - 45)**2 + (xx - 45)**2 <= 100)
    gen = WatershedMaskGenerator(distance_sigma=2.0, keep_unseeded=True,
                                 fill_holes=True, smooth_sigma=1.0,
                                 min_area=20)
    cands = gen(None, np.array([[20.0, 20.0]]), None, fg_mask=fg)
    # The seeded disk and the unseeded one both become instances.
    assert len(cands.scores) == 2
    with pytest.raises(ValueError, match='distance_sigma'):
        WatershedMaskGenerator(distance_sigma=-1)
