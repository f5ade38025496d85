import numpy as np
import pytest

from nucseg.models.mask_generators.candidates import (InstanceCandidates,
                                                      bbox_overlap_pairs,
                                                      tight_crop)


def _disk(shape, cx, cy, r):
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    return (xx - cx)**2 + (yy - cy)**2 <= r * r


def _random_masks(rng, shape=(60, 70), n=25):
    masks = []
    for _ in range(n):
        m = _disk(shape, rng.uniform(0, shape[1]), rng.uniform(0, shape[0]),
                  rng.uniform(2, 12))
        m &= rng.random(shape) > 0.1  # ragged masks
        masks.append(m)
    return masks


def test_tight_crop_and_from_masks():
    m = np.zeros((10, 12), bool)
    m[2:5, 3:9] = True
    m[4, 10] = True
    box, crop = tight_crop(m, offset=(100, 50))
    assert box.tolist() == [103, 52, 111, 55]
    assert crop.shape == (3, 8) and crop.sum() == m.sum()
    box, crop = tight_crop(np.zeros((4, 4), bool), offset=(1, 2))
    assert box.tolist() == [1, 2, 1, 2] and crop.shape == (0, 0)
    c = InstanceCandidates.from_masks([m, np.zeros_like(m)], [0.3, 0.2])
    assert len(c) == 2
    assert c.areas.tolist() == [m.sum(), 0]
    np.testing.assert_array_equal(c.mask(0), m)
    assert not c.mask(1).any()


def test_validation_names_the_problem():
    with pytest.raises(ValueError, match='same length'):
        InstanceCandidates(np.zeros((2, 4)), [np.zeros((0, 0), bool)],
                           np.zeros(2), (5, 5))
    with pytest.raises(ValueError, match='inside'):
        InstanceCandidates(np.array([[0, 0, 6, 2]]), [np.ones((2, 6), bool)],
                           np.ones(1), (5, 5))
    with pytest.raises(ValueError, match=r'crops\[0\]'):
        InstanceCandidates(np.array([[0, 0, 3, 2]]), [np.ones((3, 3), bool)],
                           np.ones(1), (5, 5))


def test_to_label_map_higher_score_wins_overlaps():
    shape = (20, 20)
    a = np.zeros(shape, bool)
    a[2:12, 2:12] = True
    b = np.zeros(shape, bool)
    b[6:16, 6:16] = True
    covered = np.zeros(shape, bool)
    covered[8:10, 8:10] = True  # inside both
    c = InstanceCandidates.from_masks([a, b, covered], [0.9, 0.5, 0.1])
    lab = c.to_label_map()
    assert lab.dtype == np.int32
    # a (score 0.9) wins the overlap, covered (0.1) disappears; ids 1..2.
    assert set(np.unique(lab)) == {0, 1, 2}
    assert (lab[a] == 1).all()
    assert (lab[b & ~a] == 2).all()
    # Reversed scores: b wins, covered still loses.
    lab2 = c.with_scores([0.5, 0.9, 0.1]).to_label_map()
    assert (lab2[b] == 2).all() and (lab2[a & ~b] == 1).all()
    # 'index' order: the last candidate wins.
    lab3 = c.to_label_map(order='index')
    assert (lab3[covered] == 3).all()
    with pytest.raises(ValueError, match='order'):
        c.to_label_map(order='area')


def test_label_map_round_trip():
    rng = np.random.default_rng(0)
    lab = np.zeros((40, 50), np.int32)
    for k in range(1, 9):
        lab[_disk(lab.shape, rng.uniform(0, 50), rng.uniform(0, 40),
                  rng.uniform(3, 8))] = k * 3  # sparse ids
    c = InstanceCandidates.from_label_map(lab)
    assert np.allclose(c.scores, 1)
    present = [k for k in np.unique(lab) if k]
    assert len(c) == len(present)
    out = c.to_label_map(order='index')
    for i, k in enumerate(present):
        np.testing.assert_array_equal(out == i + 1, lab == k)
    with pytest.raises(ValueError, match='scores'):
        InstanceCandidates.from_label_map(lab, scores=[1.0])


def test_select_translate_concatenate():
    rng = np.random.default_rng(1)
    masks = _random_masks(rng, n=6)
    c = InstanceCandidates.from_masks(masks, np.arange(6.0))
    s = c.select([4, 1])
    assert s.scores.tolist() == [4.0, 1.0]
    np.testing.assert_array_equal(s.mask(0), masks[4])
    b = c.select(np.arange(6) % 2 == 0)
    assert b.scores.tolist() == [0.0, 2.0, 4.0]
    with pytest.raises(ValueError, match='boolean index'):
        c.select(np.ones(3, bool))
    # Translate into a larger image, then clip into a smaller one.
    t = c.translate((5, 7), (80, 90))
    for k in range(6):
        np.testing.assert_array_equal(t.mask(k)[7:67, 5:75], masks[k])
    small = c.translate((-10, 0), (60, 30))
    for k in range(6):
        np.testing.assert_array_equal(small.mask(k), masks[k][:, 10:40])
    j = InstanceCandidates.concatenate([c, s])
    assert len(j) == 8 and j.scores[-1] == 1.0
    with pytest.raises(ValueError, match='cannot join'):
        InstanceCandidates.concatenate([c, t])
    assert len(InstanceCandidates.concatenate([], (4, 4))) == 0


def test_bbox_overlap_pairs_matches_brute_force():
    rng = np.random.default_rng(2)
    x0 = rng.integers(0, 100, 80)
    y0 = rng.integers(0, 100, 80)
    boxes = np.stack([x0, y0, x0 + rng.integers(0, 15, 80),
                      y0 + rng.integers(0, 15, 80)], 1)
    i, j = bbox_overlap_pairs(boxes)
    expect = [(p, q) for p in range(80) for q in range(p + 1, 80)
              if min(boxes[p, 2], boxes[q, 2]) > max(boxes[p, 0], boxes[q, 0])
              and min(boxes[p, 3], boxes[q, 3]) > max(boxes[p, 1],
                                                      boxes[q, 1])]
    assert list(zip(i.tolist(), j.tolist())) == expect
    assert len(expect) > 10


def test_pairwise_overlap_and_iou_match_dense_masks():
    rng = np.random.default_rng(3)
    masks = _random_masks(rng, n=30)
    c = InstanceCandidates.from_masks(masks, rng.random(30))
    i, j, inter = c.pairwise_overlap()
    dense = np.array(masks).reshape(30, -1).astype(np.int64)
    full = dense @ dense.T
    pairs = {(p, q): full[p, q] for p in range(30) for q in range(p + 1, 30)
             if full[p, q] > 0}
    assert dict(zip(zip(i.tolist(), j.tolist()), inter.tolist())) == pairs
    i2, j2, iou = c.pairwise_iou()
    a = dense.sum(1)
    np.testing.assert_allclose(iou, inter / (a[i] + a[j] - inter))
    assert np.array_equal(i2, i) and np.array_equal(j2, j)
    # Box IoU of the tight boxes.
    bi, bj, biou = c.box_iou_pairs()
    k = 0
    b = c.boxes
    inter_box = ((min(b[bi[k], 2], b[bj[k], 2]) - max(b[bi[k], 0],
                                                      b[bj[k], 0]))
                 * (min(b[bi[k], 3], b[bj[k], 3]) - max(b[bi[k], 1],
                                                        b[bj[k], 1])))
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    assert biou[k] == pytest.approx(
        inter_box / (area[bi[k]] + area[bj[k]] - inter_box))


def test_mean_in_masks_and_sparse_memory():
    rng = np.random.default_rng(4)
    masks = _random_masks(rng, n=5)
    c = InstanceCandidates.from_masks(masks + [np.zeros_like(masks[0])])
    values = rng.random(masks[0].shape)
    expect = [values[m].mean() for m in masks] + [0.0]
    np.testing.assert_allclose(c.mean_in_masks(values), expect)
    with pytest.raises(ValueError, match='shape'):
        c.mean_in_masks(values[:10])
    # 1000 nuclei of 1000x1000: crops hold ~ the boxes, not N x H x W.
    shape = (1000, 1000)
    boxes, crops = [], []
    for k in range(1000):
        x, y = (k % 40) * 25, (k // 40) * 40
        boxes.append([x, y, x + 20, y + 20])
        crops.append(np.ones((20, 20), bool))
    big = InstanceCandidates(np.array(boxes), crops, np.ones(1000), shape)
    assert sum(cr.nbytes for cr in big.crops) == 1000 * 400
    assert big.to_label_map().max() == 1000
