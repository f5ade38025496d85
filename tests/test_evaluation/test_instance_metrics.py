"""Tests of nucseg.evaluation.functional.instance_metrics."""
import importlib
import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from nucseg.evaluation.functional import (INSTANCE_METRIC_NAMES,
                                          instance_metrics, remap_label)
from nucseg.evaluation.functional.reference import (
    perturb_instance_map, random_instance_map, reference_instance_metrics)

# The package exports the function under the module's name; fetch the
# module itself to patch its constants.
im_module = importlib.import_module(
    'nucseg.evaluation.functional.instance_metrics')

CASES_DIR = Path(__file__).resolve().parents[1] / 'data' / 'metric_cases'
GOLDEN_KEYS = ('aji', 'aji_plus', 'dq', 'sq', 'pq', 'dice')
ALL_KEYS = INSTANCE_METRIC_NAMES + ('tp', 'fp', 'fn')


def _golden_cases():
    with open(CASES_DIR / 'expected.json') as f:
        return json.load(f)['cases']


def _load(name):
    with np.load(CASES_DIR / f'{name}.npz') as data:
        return data['gt'], data['pred']


def _assert_same(got, want, atol=1e-9, keys=ALL_KEYS):
    for key in keys:
        assert got[key] == pytest.approx(want[key], abs=atol), key


def _square(shape, y, x, side, value=1, out=None):
    out = np.zeros(shape, np.int32) if out is None else out
    out[y:y + side, x:x + side] = value
    return out


# --------------------------------------------------------------- golden values
@pytest.mark.parametrize('case', _golden_cases(), ids=lambda c: c['name'])
def test_golden_values(case):
    gt, pred = _load(case['name'])
    got = instance_metrics(gt, pred)
    for key in GOLDEN_KEYS:
        assert abs(got[key] - case[key]) < 1e-6, (case['name'], key)
    assert got['obj_f1'] == pytest.approx(got['dq'], abs=1e-12)


@pytest.mark.parametrize('case', _golden_cases()[:8], ids=lambda c: c['name'])
def test_reference_matches_golden_values(case):
    # The slow reference is itself trustworthy on the golden set.
    gt, pred = _load(case['name'])
    got = reference_instance_metrics(gt, pred)
    for key in GOLDEN_KEYS:
        assert abs(got[key] - case[key]) < 1e-6, (case['name'], key)


# -------------------------------------------------------- hand-computed cases
def test_shifted_square_by_hand():
    gt = _square((30, 30), 5, 5, 10)  # 100 px
    pred = _square((30, 30), 5, 10, 10)  # overlap 50, union 150
    got = instance_metrics(gt, pred)
    assert got['aji'] == pytest.approx(1 / 3)
    assert got['aji_plus'] == pytest.approx(1 / 3)
    assert (got['tp'], got['fp'], got['fn']) == (0, 1, 1)
    assert got['dq'] == 0.0 and got['sq'] == 0.0 and got['pq'] == 0.0
    assert got['dice'] == pytest.approx(0.5)
    # IoU 1/3 > 0.3: a match under the Hungarian rule.
    low = instance_metrics(gt, pred, match_iou=0.3)
    assert (low['tp'], low['fp'], low['fn']) == (1, 0, 0)
    assert low['dq'] == 1.0
    assert low['sq'] == pytest.approx((1 / 3) / (1 + 1e-6), abs=1e-12)
    assert low['obj_f1'] == 1.0


def test_merge_separates_aji_from_aji_plus():
    # Two touching gt squares, one prediction covering both.
    gt = _square((20, 30), 5, 5, 10, 1)
    gt = _square((20, 30), 5, 15, 10, 2, out=gt)
    pred = (gt > 0).astype(np.int32)
    got = instance_metrics(gt, pred)
    # AJI: both gt pair with the merged pred: 200 / 400.
    assert got['aji'] == pytest.approx(0.5)
    # AJI+: one unique pair (100 / 200) plus the other gt (100) in union.
    assert got['aji_plus'] == pytest.approx(1 / 3)
    assert (got['tp'], got['fp'], got['fn']) == (0, 1, 2)
    assert got['dice'] == 1.0


def test_aji_ties_pick_lowest_pred_id():
    # gt 1 has the same IoU (8 / 32) with predictions A and B; gt 2 pairs
    # with B. HoVer-Net's argmax takes the first (lowest id) prediction.
    gt = np.zeros((4, 12), np.int32)
    gt[:, 4:8] = 1
    gt[:, 8:12] = 2
    pred = np.zeros_like(gt)
    pred[:, 0:6] = 1  # A
    pred[:, 6:12] = 2  # B
    # A first: pairs (1, A), (2, B), nothing unpaired: 24 / (32 + 24).
    assert instance_metrics(gt, pred)['aji'] == pytest.approx(24 / 56)
    # B first: pairs (1, B), (2, B), A unpaired: 24 / (32 + 24 + 24).
    swapped = np.where(pred > 0, 3 - pred, 0)
    assert instance_metrics(gt, swapped)['aji'] == pytest.approx(24 / 80)
    for p in (pred, swapped):
        _assert_same(instance_metrics(gt, p),
                     reference_instance_metrics(gt, p))


def test_strict_threshold():
    # IoU exactly 0.5 is not a match (HoVer-Net: IoU > 0.5).
    gt = _square((10, 10), 0, 0, 4)  # 16 px
    pred = np.zeros_like(gt)
    pred[0:4, 0:2] = 1  # 8 px inside gt: IoU = 8 / 16
    got = instance_metrics(gt, pred)
    assert got['tp'] == 0
    pred[0:4, 2] = 1  # IoU = 12 / 16
    assert instance_metrics(gt, pred)['tp'] == 1


# ----------------------------------------------------------------- edge cases
def _nonempty_pair():
    rng = np.random.default_rng(1)
    gt = random_instance_map((64, 64), 10, rng)
    return gt, perturb_instance_map(gt, rng)


def test_empty_prediction_gives_zeros():
    gt, _ = _nonempty_pair()
    got = instance_metrics(gt, np.zeros_like(gt))
    for key in INSTANCE_METRIC_NAMES:
        assert got[key] == 0.0, key
    assert (got['tp'], got['fp'], got['fn']) == (0, 0, len(np.unique(gt)) - 1)


def test_empty_gt_gives_zeros():
    _, pred = _nonempty_pair()
    got = instance_metrics(np.zeros_like(pred), pred)
    for key in INSTANCE_METRIC_NAMES:
        assert got[key] == 0.0, key
    assert got['fp'] == len(np.unique(pred)) - 1


def test_both_empty_gives_ones():
    empty = np.zeros((16, 16), np.int32)
    got = instance_metrics(empty, empty)
    for key in INSTANCE_METRIC_NAMES:
        assert got[key] == 1.0, key
    assert (got['tp'], got['fp'], got['fn']) == (0, 0, 0)


def test_zero_size_maps():
    empty = np.zeros((0, 5), np.int32)
    assert instance_metrics(empty, empty)['pq'] == 1.0


def test_no_nan_or_warning_on_empty_inputs():
    gt, pred = _nonempty_pair()
    empty = np.zeros_like(gt)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        for a, b in ((gt, empty), (empty, pred), (empty, empty)):
            for thr in (0.5, 0.2):
                got = instance_metrics(a, b, match_iou=thr)
                assert all(np.isfinite(got[k]) for k in ALL_KEYS)


@pytest.mark.parametrize('dtype', [np.uint8, np.uint16, np.int32, np.int64,
                                   np.uint64])
def test_integer_dtypes(dtype):
    gt, pred = _nonempty_pair()
    want = instance_metrics(gt, pred)
    got = instance_metrics(gt.astype(dtype), pred.astype(dtype))
    _assert_same(got, want, atol=0)


def test_non_contiguous_ids_and_gaps():
    gt, pred = _nonempty_pair()
    want = instance_metrics(gt, pred)
    # Monotone maps with large gaps (order preserved -> identical results).
    gt_gaps = np.where(gt > 0, gt * 37 + 1000, 0)
    pred_gaps = np.where(pred > 0, pred * 5 + 3, 0)
    _assert_same(instance_metrics(gt_gaps, pred_gaps), want, atol=0)


def test_huge_ids_use_sorting_path():
    gt, pred = _nonempty_pair()
    want = instance_metrics(gt, pred)
    big = np.int64(1) << 40
    gt_big = np.where(gt > 0, gt.astype(np.int64) * big, 0)
    pred_big = np.where(pred > 0, pred.astype(np.int64) + big, 0)
    _assert_same(instance_metrics(gt_big, pred_big), want, atol=0)


def test_remap_label():
    label = np.array([[0, 7, 7], [3, 0, 100]], np.int64)
    out = remap_label(label)
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out, [[0, 2, 2], [1, 0, 3]])
    contiguous = np.array([[0, 1], [2, 2]], np.uint16)
    np.testing.assert_array_equal(remap_label(contiguous), contiguous)


@pytest.mark.parametrize('bad', [
    np.zeros((4, 4), np.float32),
    np.zeros((4, 4), bool),
    np.full((4, 4), -1, np.int32),
    np.zeros((1, 4, 4), np.int32),
])
def test_invalid_maps_raise(bad):
    good = np.zeros((4, 4), np.int32)
    with pytest.raises(ValueError, match='pred'):
        instance_metrics(good, bad)
    with pytest.raises(ValueError, match='gt'):
        instance_metrics(bad, good)


def test_negative_message_names_minimum():
    bad = np.zeros((4, 4), np.int16)
    bad[1, 1] = -3
    with pytest.raises(ValueError, match='negative.*-3'):
        instance_metrics(np.zeros((4, 4), np.int32), bad)


def test_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r'\(4, 5\).*\(5, 4\)'):
        instance_metrics(np.zeros((4, 5), np.int32),
                         np.zeros((5, 4), np.int32))


@pytest.mark.parametrize('thr', [-0.1, 1.5])
def test_match_iou_out_of_range(thr):
    gt = np.zeros((4, 4), np.int32)
    with pytest.raises(ValueError, match='match_iou'):
        instance_metrics(gt, gt, match_iou=thr)


# ------------------------------------------------------------------ properties
def test_identical_maps_score_one():
    rng = np.random.default_rng(2)
    gt = random_instance_map((96, 96), 25, rng)
    n = len(np.unique(gt)) - 1
    got = instance_metrics(gt, gt.copy())
    for key in ('aji', 'aji_plus', 'dq', 'dice', 'obj_f1'):
        assert got[key] == 1.0, key
    # SQ divides by TP + 1e-6 (HoVer-Net), hence not exactly 1.
    assert got['sq'] == pytest.approx(n / (n + 1e-6), abs=1e-12)
    assert got['pq'] == pytest.approx(1.0, abs=1e-6)
    assert (got['tp'], got['fp'], got['fn']) == (n, 0, 0)


@pytest.mark.parametrize('seed', range(4))
def test_permuting_ids_changes_nothing(seed):
    rng = np.random.default_rng(seed)
    gt = random_instance_map((96, 96), 30, rng)
    pred = perturb_instance_map(gt, rng)
    want = instance_metrics(gt, pred)

    def permute(label):
        ids = np.unique(label)
        lut = np.zeros(ids.max() + 1, np.int64)
        lut[ids[1:]] = rng.permutation(ids.size - 1) * 3 + 11
        return lut[label]

    for _ in range(3):
        got = instance_metrics(permute(gt), permute(pred))
        _assert_same(got, want, atol=1e-12)


def test_swapping_gt_and_pred_is_symmetric_for_pq():
    gt, pred = _nonempty_pair()
    a = instance_metrics(gt, pred)
    b = instance_metrics(pred, gt)
    for key in ('dq', 'sq', 'pq', 'dice', 'aji_plus'):
        assert a[key] == pytest.approx(b[key], abs=1e-12), key
    assert (a['fp'], a['fn']) == (b['fn'], b['fp'])


# ------------------------------------------- agreement with the reference code
@pytest.mark.parametrize('seed', range(6))
@pytest.mark.parametrize('match_iou', [0.5, 0.75, 0.3, 0.0])
def test_matches_reference_on_random_maps(seed, match_iou):
    rng = np.random.default_rng(100 + seed)
    shape = (int(rng.integers(48, 160)), int(rng.integers(48, 160)))
    gt = random_instance_map(shape, int(rng.integers(5, 60)), rng)
    pred = perturb_instance_map(gt, rng, fraction=0.15)
    got = instance_metrics(gt, pred, match_iou=match_iou)
    want = reference_instance_metrics(gt, pred, match_iou=match_iou)
    _assert_same(got, want)


def test_matches_reference_when_components_are_large():
    # Crowded, heavily overlapping maps: several-instance components in the
    # overlap graph exercise the per-component Hungarian matching.
    rng = np.random.default_rng(7)
    gt = random_instance_map((120, 120), 150, rng, axes=(4.0, 12.0))
    pred = random_instance_map((120, 120), 150, rng, axes=(4.0, 12.0))
    for thr in (0.5, 0.1):
        _assert_same(
            instance_metrics(gt, pred, thr),
            reference_instance_metrics(gt, pred, thr))


def test_dense_and_sparse_pair_tables_agree(monkeypatch):
    # Many small nuclei: the pair table has more cells (~200 x 200) than
    # overlapping pixels, so without the dense minimum np.unique is used.
    rng = np.random.default_rng(8)
    gt = random_instance_map((300, 300), 200, rng, axes=(3.0, 7.0))
    pred = perturb_instance_map(gt, rng)
    g, n_gt = im_module.dense_index(gt)
    p, n_pred = im_module.dense_index(pred)
    overlap = np.count_nonzero((g > 0) & (p > 0))
    assert overlap < n_gt * n_pred <= im_module._DENSE_PAIR_CELLS
    dense = im_module._pair_table(g, p, n_gt, n_pred)
    want = instance_metrics(gt, pred)
    monkeypatch.setattr(im_module, '_DENSE_PAIR_CELLS', 0)
    sparse = im_module._pair_table(g, p, n_gt, n_pred)
    for a, b in zip(dense, sparse):
        np.testing.assert_array_equal(a, b)
    _assert_same(instance_metrics(gt, pred), want, atol=0)


def _monuseg_maps(shared_data):
    try:
        from nucseg.datasets.converters.monuseg import parse_monuseg_xml
    except ImportError as exc:
        pytest.skip(f'MoNuSeg converter not importable: {exc}')
    xmls = sorted((shared_data / 'monuseg_raw' / 'Annotations').glob('*.xml'))
    if not xmls:
        pytest.skip('no MoNuSeg annotations in ../shared/data')
    # MoNuSeg 2018 training tiles are 1000 x 1000.
    return [parse_monuseg_xml(p, shape=(1000, 1000)) for p in xmls]


def test_matches_reference_on_monuseg(shared_data):
    rng = np.random.default_rng(0)
    for label in _monuseg_maps(shared_data):
        # Crop to keep the slow reference fast; the fast code gets the
        # full tile below.
        gt = label[:400, :400]
        assert len(np.unique(gt)) > 20
        pred = perturb_instance_map(gt, rng, fraction=0.1)
        for thr in (0.5, 0.3):
            _assert_same(
                instance_metrics(gt, pred, thr),
                reference_instance_metrics(gt, pred, thr))
        full = instance_metrics(label, perturb_instance_map(label, rng))
        assert 0.3 < full['aji'] < 1.0 and 0.3 < full['pq'] < 1.0
