import math

import numpy as np
import pytest

from nucseg.models.mask_generators.candidates import InstanceCandidates
from nucseg.models.postprocessors.soft_nms import (ContainmentAwareSoftNMS,
                                                   combined_scores,
                                                   containment_aware_soft_nms,
                                                   normalize_h_map)
from nucseg.registry import TASK_UTILS

SHAPE = (64, 64)


def _disk(cx, cy, r, shape=SHAPE):
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    return (xx - cx)**2 + (yy - cy)**2 <= r * r


def _rect(x0, y0, x1, y1, shape=SHAPE):
    m = np.zeros(shape, bool)
    m[y0:y1, x0:x1] = True
    return m


def _bbox(m):
    ys, xs = np.nonzero(m)
    if ys.size == 0:
        return None
    return ys.min(), ys.max(), xs.min(), xs.max()


def _boxes_touch(b1, b2):
    """The official code's box test (inclusive boxes, > 0 overlap)."""
    if b1 is None or b2 is None:
        return False
    inter_w = min(b1[3], b2[3]) - max(b1[2], b2[2])
    inter_h = min(b1[1], b2[1]) - max(b1[0], b2[0])
    return inter_w > 0 and inter_h > 0


def _iou(a, b):
    union = (a | b).sum()
    return (a & b).sum() / union if union else 0.0


def _penalised(masks, scores, eps, contain, contained_min):
    s = list(map(float, scores))
    n = len(masks)
    area = [int(m.sum()) for m in masks]
    boxes = [_bbox(m) for m in masks]
    out = list(s)
    for i in range(n):
        cnt = 0
        for j in range(n):
            if (i == j or boxes[j] is None or area[i] < area[j]
                    or not _boxes_touch(boxes[i], boxes[j])):
                continue
            if ((masks[i] & masks[j]).sum() / area[j] > contain
                    and (contained_min is None or s[j] > contained_min)):
                cnt += 1
        if cnt > 1:
            out[i] *= 1 - math.tanh(eps * cnt)
    return out, boxes


def _official_reference(masks, scores, sigma=0.5, tau=0.5, eps=0.5,
                        contain=0.9, contained_min=0.5):
    """The authors' ``soft_nms`` (project/utils/NMS.py), as plain loops."""
    s, boxes = _penalised(masks, scores, eps, contain, contained_min)
    live = list(range(len(masks)))
    kept, kept_s = [], []
    while live:
        m = max(live, key=lambda i: s[i])  # first maximum: lower index
        kept.append(m)
        kept_s.append(s[m])
        live.remove(m)
        for i in list(live):
            if not _boxes_touch(boxes[m], boxes[i]):
                continue
            s[i] *= math.exp(-_iou(masks[m], masks[i])**2 / sigma)
            if s[i] < tau:
                live.remove(i)
    return kept, kept_s


def _alg3_reference(masks, scores, sigma=0.5, tau=0.5, eps=0.5,
                    contain=0.9, contained_min=0.5):
    """Alg. 3 read literally (every remaining candidate, mask IoU)."""
    s, _ = _penalised(masks, scores, eps, contain, contained_min)
    live = list(range(len(masks)))
    kept, kept_s = [], []
    while live:
        m = max(live, key=lambda i: s[i])
        kept.append(m)
        kept_s.append(s[m])
        live.remove(m)
        for i in list(live):
            s[i] *= math.exp(-_iou(masks[m], masks[i])**2 / sigma)
            if s[i] < tau:
                live.remove(i)
    return kept, kept_s


def test_containment_penalty_suppresses_the_big_mask():
    big = _disk(32, 32, 20)
    smalls = [_disk(22, 32, 5), _disk(40, 30, 5), _disk(32, 42, 4)]
    cands = InstanceCandidates.from_masks([big] + smalls,
                                          [0.95, 0.9, 0.85, 0.8])
    kept, idx = containment_aware_soft_nms(cands)
    assert sorted(idx.tolist()) == [1, 2, 3]
    # The three small ones keep their scores (disjoint from each other).
    np.testing.assert_allclose(kept.scores, [0.9, 0.85, 0.8])
    # One contained mask is not enough for the penalty (n > 1 in Alg. 3).
    one = InstanceCandidates.from_masks([big, smalls[0]], [0.95, 0.9])
    kept1, idx1 = containment_aware_soft_nms(one)
    assert idx1.tolist()[0] == 0
    assert kept1.scores[0] == pytest.approx(0.95)
    # Contained masks count only when they score > 0.5 (official code,
    # the default); counting every one penalises the big mask.
    weak = cands.with_scores([0.95, 0.4, 0.4, 0.8])
    _, idx_w = containment_aware_soft_nms(weak)
    assert idx_w.tolist()[0] == 0
    _, idx_p = containment_aware_soft_nms(weak, contained_score_thresh=None)
    assert 0 not in idx_p.tolist()


def test_isolated_low_score_mask_is_kept():
    """Alg. 3 always keeps the current maximum, and the official loop never
    touches a candidate whose box misses every kept one: an isolated mask
    scoring 0.45 (< tau) survives, alone or beside a better one."""
    lone = InstanceCandidates.from_masks([_disk(20, 20, 6)], [0.45])
    for mode in ('official', 'alg3'):
        kept, idx = containment_aware_soft_nms(lone, threshold_mode=mode)
        assert idx.tolist() == [0]
        assert kept.scores[0] == pytest.approx(0.45)
    pair = InstanceCandidates.from_masks(
        [_disk(12, 12, 6), _disk(50, 50, 6)], [0.9, 0.45])
    assert containment_aware_soft_nms(pair)[1].tolist() == [0, 1]
    # The literal pseudo-code drops it once a better mask was kept.
    assert containment_aware_soft_nms(
        pair, threshold_mode='alg3')[1].tolist() == [0]


def test_big_mask_with_two_weak_contained_masks_is_kept():
    """As the official code does: the weak (<= 0.5) contained masks do not
    count, so the big mask keeps its score, is kept first, and its decay
    removes the two weak ones."""
    big = _disk(32, 32, 14)
    weak = [_disk(26, 32, 4), _disk(38, 32, 4)]
    masks = [big] + weak
    scores = [0.8, 0.45, 0.45]
    kept, idx = containment_aware_soft_nms(
        InstanceCandidates.from_masks(masks, scores))
    assert idx.tolist() == [0]
    assert kept.scores[0] == pytest.approx(0.8)
    assert idx.tolist() == _official_reference(masks, scores)[0]
    # A hand computation: IoU(big, weak) = |weak| / |big| -> decayed score.
    u = weak[0].sum() / big.sum()
    assert 0.45 * math.exp(-u * u / 0.5) < 0.5


def test_gaussian_decay_of_two_overlapping_masks():
    a = _rect(10, 10, 30, 30)  # 400 px
    for shift, kept_second in ((4, False), (14, True)):
        b = _rect(10 + shift, 10, 30 + shift, 30)
        inter = (a & b).sum()
        u = inter / (a | b).sum()
        cands = InstanceCandidates.from_masks([a, b], [0.9, 0.8])
        kept, idx = containment_aware_soft_nms(cands, sigma=0.5)
        decayed = 0.8 * math.exp(-u * u / 0.5)
        assert (decayed >= 0.5) == kept_second
        if kept_second:
            assert idx.tolist() == [0, 1]
            assert kept.scores[1] == pytest.approx(decayed)
        else:
            assert idx.tolist() == [0]
    # Box IoU (letter of Alg. 3) vs mask IoU: two L-shapes whose boxes
    # coincide but whose masks barely overlap.
    la = _rect(10, 10, 40, 14) | _rect(10, 10, 14, 40)
    lb = _rect(10, 36, 40, 40) | _rect(36, 10, 40, 40)
    cl = InstanceCandidates.from_masks([la, lb], [0.9, 0.8])
    assert containment_aware_soft_nms(cl)[1].tolist() == [0, 1]
    assert containment_aware_soft_nms(cl, iou_type='box')[1].tolist() == [0]


def test_score_combination_with_h_map():
    rng = np.random.default_rng(0)
    h = rng.gamma(2.0, 0.1, SHAPE)
    hn = normalize_h_map(h)
    lo, hi = np.percentile(h, (1, 99))
    np.testing.assert_allclose(hn, (np.clip(h, lo, hi) - lo) / (hi - lo))
    assert hn.min() == 0 and hn.max() == 1
    assert not normalize_h_map(np.full(SHAPE, 3.0)).any()
    masks = [_disk(16, 16, 8), _disk(48, 48, 8)]
    cands = InstanceCandidates.from_masks(masks, [0.9, 0.6])
    s = combined_scores(cands, h)
    expect = [0.7 * sc + 0.3 * hn[m].mean()
              for sc, m in zip([0.9, 0.6], masks)]
    np.testing.assert_allclose(s, expect)
    # No H map: the candidate scores alone.
    np.testing.assert_allclose(combined_scores(cands, None), [0.9, 0.6])
    # A strongly stained nucleus outranks a higher SAM score.
    h2 = np.zeros(SHAPE)
    h2[masks[1]] = 1.0
    h2[0, 0] = 0.5
    kept, idx = containment_aware_soft_nms(
        InstanceCandidates.from_masks(masks, [0.72, 0.7]), h2)
    assert idx.tolist() == [1, 0]  # without h2 the order would be [0, 1]
    np.testing.assert_allclose(kept.scores, [0.7 * 0.7 + 0.3, 0.7 * 0.72])
    with pytest.raises(ValueError, match='h_map'):
        containment_aware_soft_nms(cands, h[:10])


def test_empty_input_and_all_below_threshold():
    empty = InstanceCandidates.empty(SHAPE)
    kept, idx = containment_aware_soft_nms(empty)
    assert len(kept) == 0 and idx.size == 0
    lab = ContainmentAwareSoftNMS(return_label_map=True)(empty)
    assert lab.shape == SHAPE and not lab.any()
    # Decayed below tau by a kept neighbour: dropped.
    near = InstanceCandidates.from_masks(
        [_disk(20, 20, 6), _disk(24, 20, 6)], [0.9, 0.52])
    assert containment_aware_soft_nms(near)[1].tolist() == [0]
    with pytest.raises(ValueError, match='threshold_mode'):
        containment_aware_soft_nms(near, threshold_mode='x')


def test_matches_reference_and_is_deterministic():
    rng = np.random.default_rng(5)
    masks = []
    for _ in range(40):
        cx, cy = rng.uniform(8, 56, 2)
        masks.append(_disk(cx, cy, rng.uniform(3, 12)))
    masks.append(_disk(32, 32, 28))  # container of many
    masks.append(masks[3].copy())  # exact duplicate, equal score
    scores = np.concatenate([rng.uniform(0.45, 1.0, 41), [0.0]])
    scores[-1] = scores[3]
    cands = InstanceCandidates.from_masks(masks, scores)
    kept, idx = containment_aware_soft_nms(cands)
    ref_idx, ref_s = _official_reference(masks, scores)
    assert idx.tolist() == ref_idx
    np.testing.assert_allclose(kept.scores, ref_s, rtol=1e-12)
    kept3, idx3 = containment_aware_soft_nms(cands, threshold_mode='alg3')
    ref3_idx, ref3_s = _alg3_reference(masks, scores)
    assert idx3.tolist() == ref3_idx
    np.testing.assert_allclose(kept3.scores, ref3_s, rtol=1e-12)
    assert 40 not in idx.tolist()  # the container is penalised away
    assert 3 in idx.tolist() and 41 not in idx.tolist()  # tie -> lower id
    kept2, idx2 = containment_aware_soft_nms(cands)
    assert np.array_equal(idx, idx2)
    assert np.array_equal(kept.scores, kept2.scores)
    assert np.all(np.diff(kept.scores) <= 0)


@pytest.mark.parametrize('seed', range(6))
def test_matches_the_official_loop_with_low_scores(seed):
    """Random crowded scenes with many scores below tau, boxes touching by
    one row or column, empty masks: both modes equal their references."""
    rng = np.random.default_rng(100 + seed)
    masks = []
    for _ in range(30):
        cx, cy = rng.uniform(4, 60, 2)
        masks.append(_disk(cx, cy, rng.uniform(2, 10)))
    masks.append(_rect(10, 10, 20, 20))
    masks.append(_rect(19, 19, 30, 30))  # shares one corner pixel
    masks.append(np.zeros(SHAPE, bool))
    scores = rng.uniform(0.2, 1.0, len(masks))
    cands = InstanceCandidates.from_masks(masks, scores)
    for mode, ref in (('official', _official_reference),
                      ('alg3', _alg3_reference)):
        kept, idx = containment_aware_soft_nms(cands, threshold_mode=mode)
        ref_idx, ref_s = ref(masks, scores)
        assert idx.tolist() == ref_idx, mode
        np.testing.assert_allclose(kept.scores, ref_s, rtol=1e-12)


def test_registry_class_and_argument_checks():
    nms = TASK_UTILS.build(
        dict(type='ContainmentAwareSoftNMS', return_label_map=True))
    img = np.full(SHAPE + (3, ), 230, np.uint8)
    m = _disk(30, 30, 8)
    img[m] = (60, 40, 140)  # haematoxylin-like
    lab = nms(InstanceCandidates.from_masks([m], [0.8]), image=img)
    assert (lab[m] == 1).all() and lab.max() == 1
    with pytest.raises(ValueError, match='sigma'):
        containment_aware_soft_nms(InstanceCandidates.empty(SHAPE), sigma=0)
    with pytest.raises(ValueError, match='iou_type'):
        containment_aware_soft_nms(
            InstanceCandidates.empty(SHAPE), iou_type='x')
