import numpy as np
import pytest
from scipy import ndimage as ndi
from scipy.spatial.distance import cdist

from nucseg.models.prompters.point_prompts import (expanded_background,
                                                   merge_points,
                                                   nearest_negatives,
                                                   negative_points,
                                                   positive_points,
                                                   watershed_centroids)

CENTRES = [(15, 20), (15, 60), (50, 30), (55, 75), (85, 12), (88, 88)]


def _disks(size: int = 100, radius: int = 7, centres=CENTRES):
    yy, xx = np.mgrid[:size, :size]
    lab = np.zeros((size, size), np.int32)
    for i, (cy, cx) in enumerate(centres, 1):
        lab[(yy - cy)**2 + (xx - cx)**2 <= radius**2] = i
    return lab


def _owner(lab: np.ndarray, pts: np.ndarray) -> np.ndarray:
    r = np.rint(pts[:, 1]).astype(int)
    c = np.rint(pts[:, 0]).astype(int)
    return lab[r, c]


def test_one_positive_per_disk_at_its_centre():
    lab = _disks()
    pts = positive_points(lab > 0)
    assert pts.shape == (len(CENTRES), 2) and pts.dtype == np.float32
    owner = _owner(lab, pts)
    assert (owner > 0).all()  # none in the background
    assert sorted(owner) == list(range(1, len(CENTRES) + 1))
    # (x, y) order: the centroid of disk i is (cx, cy).
    for p, i in zip(pts, owner):
        cy, cx = CENTRES[i - 1]
        np.testing.assert_allclose(p, (cx, cy), atol=1e-4)


def test_touching_disks_split_and_border_disk_kept():
    """Two overlapping disks give two regions; a border disk is kept."""
    lab = _disks(radius=9, centres=[(40, 30), (40, 46), (3, 80)])
    fg = lab > 0
    cents = watershed_centroids(fg, min_distance=5)
    assert len(cents) == 3
    assert (_owner(lab, cents) > 0).all()
    xs = np.sort(cents[cents[:, 1] > 20, 0])
    assert xs[0] < 38 < xs[1]
    # Their centroids are 16 px apart: a merge radius of 20 joins them.
    assert len(positive_points(fg, merge_distance=20)) == 2


def test_pooled_masks_are_merged():
    lab = _disks()
    shifted = np.roll(lab > 0, 2, axis=1)  # 2 px to the right
    pts = positive_points([lab > 0, shifted], merge_distance=10)
    assert len(pts) == len(CENTRES)
    for p, i in zip(pts, _owner(lab, pts)):
        cy, cx = CENTRES[i - 1]
        np.testing.assert_allclose(p, (cx + 1, cy), atol=1e-4)
    assert len(positive_points([lab > 0, shifted], merge_distance=1)) == 12


def test_snap_moves_off_mask_centroid_inside():
    ring = np.zeros((40, 40), bool)
    yy, xx = np.mgrid[:40, :40]
    d2 = (yy - 20)**2 + (xx - 20)**2
    ring[(d2 <= 12**2) & (d2 >= 8**2)] = True
    ring[18:23, 5:10] = False  # a C shape: centroid lies in the hole
    raw = positive_points(ring, min_distance=50, snap_to_mask=False)
    assert len(raw) == 1 and not ring[tuple(np.rint(raw[0, ::-1]).astype(
        int))]
    snapped = positive_points(ring, min_distance=50)
    assert ring[tuple(np.rint(snapped[0, ::-1]).astype(int))]


def test_merge_points_greedy_not_transitive():
    pts = np.array([[0, 0], [6, 0], [12, 0], [40, 40]], np.float32)
    out = merge_points(pts, distance=10)
    np.testing.assert_allclose(out, [[3, 0], [12, 0], [40, 40]])
    np.testing.assert_allclose(merge_points(pts, 0), pts)


def test_negatives_one_per_cell_never_on_foreground():
    lab = _disks()
    fg = lab > 0
    bg = expanded_background(fg)
    for mode in ('random', 'center'):
        neg = negative_points(bg, grid=24, mode=mode)
        assert neg.dtype == np.float32
        r, c = neg[:, 1].astype(int), neg[:, 0].astype(int)
        assert not fg[r, c].any() and bg[r, c].all()
        cells = (r // 24) * 5 + c // 24
        assert len(np.unique(cells)) == len(cells) == 25  # 100 px: 5x5
    np.testing.assert_array_equal(
        negative_points(bg, seed=3), negative_points(bg, seed=3))
    # 'center' picks the cell centre when it is background.
    centre = negative_points(np.ones((48, 48), bool), grid=24, mode='center')
    np.testing.assert_allclose(centre[0], (11.5, 11.5), atol=0.5)


def test_negatives_skip_cells_without_background():
    bg = np.zeros((48, 48), bool)
    bg[30, 40] = True
    np.testing.assert_array_equal(negative_points(bg, grid=24), [[40, 30]])


def test_expanded_background_fills_holes_and_keeps_margin():
    fg = np.zeros((30, 30), bool)
    fg[5:20, 5:20] = True
    fg[10:14, 10:14] = False  # hole
    bg = expanded_background(fg)
    assert not bg[10:14, 10:14].any() and bg[25, 25]
    assert expanded_background(fg, fill_holes=False)[10:14, 10:14].all()
    bg3 = expanded_background(fg, margin=3)
    dist = ndi.distance_transform_edt(~fg)
    np.testing.assert_array_equal(bg3, dist > 3)


def test_nearest_negatives_matches_brute_force():
    rng = np.random.default_rng(0)
    pos = rng.uniform(0, 100, (7, 2)).astype(np.float32)
    neg = rng.uniform(0, 100, (20, 2)).astype(np.float32)
    pts, idx = nearest_negatives(pos, neg, k=2)
    assert pts.shape == (7, 2, 2) and idx.shape == (7, 2)
    expected = np.argsort(cdist(pos, neg), axis=1)[:, :2]
    np.testing.assert_array_equal(idx, expected)
    np.testing.assert_array_equal(pts, neg[expected])
    pts1, idx1 = nearest_negatives(pos, neg[:1], k=2)
    assert pts1.shape == (7, 1, 2) and (idx1 == 0).all()


def test_empty_inputs_give_empty_arrays():
    empty = np.zeros((32, 32), bool)
    assert positive_points(empty).shape == (0, 2)
    assert watershed_centroids(empty).shape == (0, 2)
    assert negative_points(empty).shape == (0, 2)
    assert merge_points(np.zeros((0, 2))).shape == (0, 2)
    pts, idx = nearest_negatives(np.zeros((0, 2)), np.ones((3, 2)))
    assert pts.shape == (0, 2, 2) and idx.shape == (0, 2)
    pts, idx = nearest_negatives(np.ones((4, 2)), np.zeros((0, 2)))
    assert pts.shape == (4, 0, 2) and idx.shape == (4, 0)


def test_invalid_arguments():
    with pytest.raises(ValueError, match='fg_mask'):
        watershed_centroids(np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match='differ in shape'):
        positive_points([np.zeros((4, 4)), np.zeros((5, 4))])
    with pytest.raises(ValueError, match='grid'):
        negative_points(np.ones((4, 4)), grid=0)
    with pytest.raises(ValueError, match='mode'):
        negative_points(np.ones((4, 4)), mode='edge')
    with pytest.raises(ValueError, match='pos'):
        nearest_negatives(np.ones((3, 3)), np.ones((3, 2)))
    with pytest.raises(ValueError, match='k must'):
        nearest_negatives(np.ones((3, 2)), np.ones((3, 2)), k=0)


def test_distance_maxima_points_one_per_touching_disk():
    from nucseg.models.prompters.point_prompts import distance_maxima_points
    yy, xx = np.mgrid[:80, :120]
    fg = np.zeros((80, 120), bool)
    centres = [(30, 40), (30, 62), (60, 100)]  # two touching, one apart
    for cy, cx in centres:
        fg |= (yy - cy)**2 + (xx - cx)**2 <= 12**2
    pts = distance_maxima_points(fg, h=0.25, sigma=2.0)
    assert len(pts) == 3
    for cy, cx in centres:
        d = np.hypot(pts[:, 0] - cx, pts[:, 1] - cy).min()
        assert d < 2.5
    assert fg[np.rint(pts[:, 1]).astype(int),
              np.rint(pts[:, 0]).astype(int)].all()
    # An elongated nucleus (ridge of equal distance) gives one point.
    ell = ((yy - 40) / 8.0)**2 + ((xx - 60) / 30.0)**2 <= 1
    assert len(distance_maxima_points(ell, h=0.25, sigma=2.0)) == 1
    assert distance_maxima_points(np.zeros((5, 5), bool)).shape == (0, 2)
    with pytest.raises(ValueError, match='h > 0'):
        distance_maxima_points(fg, h=0)
