"""Tests of nucseg.evaluation.functional.semantic_metrics."""
import math

import numpy as np
import pytest
from scipy.spatial.distance import cdist, directed_hausdorff

from nucseg.evaluation.functional import (SEMANTIC_METRIC_NAMES,
                                          boundary_mask, hausdorff_distance,
                                          semantic_metrics)
from nucseg.evaluation.functional.reference import (perturb_instance_map,
                                                    random_instance_map)


def _square(shape, y, x, side, value=1):
    out = np.zeros(shape, np.int32)
    out[y:y + side, x:x + side] = value
    return out


def test_keys():
    gt = _square((20, 20), 2, 2, 5)
    assert tuple(semantic_metrics(gt, gt)) == SEMANTIC_METRIC_NAMES
    assert 'hausdorff' not in semantic_metrics(gt, gt, with_hausdorff=False)


def test_shifted_square_by_hand():
    shape = (40, 40)
    gt = _square(shape, 10, 10, 10)  # 100 px
    pred = _square(shape, 10, 13, 10)  # shifted 3 px right: 70 px overlap
    got = semantic_metrics(gt, pred)
    assert got['dice'] == pytest.approx(140 / 200)
    assert got['f1'] == got['dice']
    assert got['iou'] == pytest.approx(70 / 130)
    bg_iou = (1600 - 130) / (1600 - 70)
    assert got['miou'] == pytest.approx(0.5 * (70 / 130 + bg_iou))
    assert got['precision'] == pytest.approx(0.7)
    assert got['recall'] == pytest.approx(0.7)
    # Every boundary point is within 3 px of the other boundary, and the
    # left edge of gt is exactly 3 px from the left edge of pred.
    assert got['hausdorff'] == pytest.approx(3.0)
    assert got['hd95'] <= got['hausdorff']


def test_precision_recall_differ():
    shape = (30, 30)
    gt = _square(shape, 5, 5, 10)  # 100 px
    pred = _square(shape, 5, 5, 5)  # 25 px, all inside gt
    got = semantic_metrics(gt, pred)
    assert got['precision'] == 1.0
    assert got['recall'] == pytest.approx(0.25)
    assert got['dice'] == pytest.approx(50 / 125)


def test_input_kinds_agree():
    rng = np.random.default_rng(0)
    gt = random_instance_map((64, 64), 12, rng)
    pred = perturb_instance_map(gt, rng)
    want = semantic_metrics(gt, pred)
    # Binary masks, and a 3-class map whose boundary class 2 is nucleus.
    three_class = np.where(pred > 0, 1, 0).astype(np.uint8)
    three_class[boundary_mask(pred > 0)] = 2
    for g, p in ((gt > 0, pred > 0), (gt.astype(np.uint16), three_class)):
        got = semantic_metrics(g, p)
        for key in SEMANTIC_METRIC_NAMES:
            assert got[key] == pytest.approx(want[key], abs=1e-12), key


def test_identical_masks():
    rng = np.random.default_rng(1)
    gt = random_instance_map((64, 64), 12, rng)
    got = semantic_metrics(gt, gt)
    for key in ('dice', 'iou', 'miou', 'precision', 'recall', 'f1'):
        assert got[key] == 1.0, key
    assert got['hausdorff'] == 0.0 and got['hd95'] == 0.0


def test_both_empty():
    empty = np.zeros((16, 16), np.uint8)
    got = semantic_metrics(empty, empty)
    for key in ('dice', 'iou', 'miou', 'precision', 'recall', 'f1'):
        assert got[key] == 1.0, key
    assert got['hausdorff'] == 0.0 and got['hd95'] == 0.0


@pytest.mark.parametrize('empty_side', ['gt', 'pred'])
def test_one_empty(empty_side):
    full = _square((16, 16), 4, 4, 6)
    empty = np.zeros_like(full)
    gt, pred = (empty, full) if empty_side == 'gt' else (full, empty)
    got = semantic_metrics(gt, pred)
    for key in ('dice', 'iou', 'precision', 'recall', 'f1'):
        assert got[key] == 0.0, key
    # Background IoU is (256 - 36) / 256.
    assert got['miou'] == pytest.approx(0.5 * 220 / 256)
    assert math.isinf(got['hausdorff']) and math.isinf(got['hd95'])
    assert math.isinf(hausdorff_distance(gt, pred))


def test_all_foreground_background_iou():
    full = np.ones((8, 8), bool)
    got = semantic_metrics(full, full)
    assert got['miou'] == 1.0  # background empty in both: IoU 1 by rule


def _boundary_points(mask):
    return np.argwhere(boundary_mask(mask)).astype(np.float64)


@pytest.mark.parametrize('seed', range(5))
def test_hausdorff_matches_point_set_definition(seed):
    rng = np.random.default_rng(seed)
    label = random_instance_map((80, 70), 8, rng)
    gt = label > 0
    pred = perturb_instance_map(label, rng, 0.3) > 0
    a, b = _boundary_points(gt), _boundary_points(pred)
    want = max(directed_hausdorff(a, b)[0], directed_hausdorff(b, a)[0])
    assert hausdorff_distance(gt, pred) == pytest.approx(want, abs=1e-9)
    d = cdist(a, b)
    want95 = max(
        np.percentile(d.min(axis=1), 95), np.percentile(d.min(axis=0), 95))
    assert hausdorff_distance(gt, pred, 95) == pytest.approx(
        want95, abs=1e-9)
    got = semantic_metrics(gt, pred)
    assert got['hausdorff'] == pytest.approx(want, abs=1e-9)
    assert got['hd95'] == pytest.approx(want95, abs=1e-9)


def test_boundary_mask():
    mask = np.zeros((7, 7), bool)
    mask[1:6, 1:6] = True
    edge = boundary_mask(mask)
    assert edge.sum() == 16  # 5x5 square: 25 - 9 interior pixels
    assert not edge[2:5, 2:5].any()
    # Foreground on the image border is boundary too.
    assert boundary_mask(np.ones((3, 3), bool)).sum() == 8


@pytest.mark.parametrize('bad', [
    np.zeros((4, 4), np.float64),
    np.full((4, 4), -2, np.int8),
    np.zeros((4, 4, 1), np.uint8),
])
def test_invalid_maps_raise(bad):
    good = np.zeros((4, 4), np.uint8)
    with pytest.raises(ValueError, match='pred'):
        semantic_metrics(good, bad)
    with pytest.raises(ValueError, match='gt'):
        hausdorff_distance(bad, good)


def test_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r'\(4, 6\).*\(6, 4\)'):
        semantic_metrics(np.zeros((4, 6), bool), np.zeros((6, 4), bool))
    with pytest.raises(ValueError, match=r'\(4, 6\).*\(6, 4\)'):
        hausdorff_distance(np.zeros((4, 6), bool), np.zeros((6, 4), bool))


@pytest.mark.parametrize('percentile', [0, 101])
def test_bad_percentile(percentile):
    mask = np.ones((4, 4), bool)
    with pytest.raises(ValueError, match='percentile'):
        hausdorff_distance(mask, mask, percentile)
