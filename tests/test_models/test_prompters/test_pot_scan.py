import numpy as np
import pytest
import torch

from nucseg.models.prompters.partial_ot import partial_ot
from nucseg.models.prompters.pot_scan import POTScan, activation_maps
from nucseg.registry import TASK_UTILS

H = W = 12  # feature grid
IMG = 24  # image side (2x the grid)


def _scene(seed=0):
    """Features (h, w, D): nuclei direction inside ``fg``, tissue outside."""
    g = torch.Generator().manual_seed(seed)
    dim = 8
    yy, xx = np.mgrid[:H, :W]
    fg = ((yy // 3 + xx // 3) % 2 == 0)
    u, v = torch.randn(2, dim, generator=g)
    feats = torch.where(
        torch.from_numpy(fg)[..., None], u, v) + 0.3 * torch.randn(
            H, W, dim, generator=g)
    fg_ref = np.zeros((H, W), bool)
    fg_ref[:6, :6] = fg[:6, :6]  # part of the nuclei
    bg_ref = np.zeros((H, W), bool)
    bg_ref[6:, :] = ~fg[6:, :]
    return feats, fg, fg_ref, bg_ref  # float32, as from a backbone


# Image-scale masks for the stubs (reference = fg_ref upsampled 2x).
def _masks(fg_ref):
    ref = np.kron(fg_ref, np.ones((2, 2), bool))
    dots = np.zeros((IMG, IMG), bool)
    dots[::2, ::2] = True  # isolated pixels: largest component 1
    bottom = np.zeros((IMG, IMG), bool)
    bottom[12:] = True  # one big component away from the reference
    full = np.ones((IMG, IMG), bool)
    return dict(dots=dots, ref=ref, bottom=bottom, full=full)


class Stub:
    """``to_foreground`` returning a fixed mask per rho, recording calls."""

    def __init__(self, table, default):
        self.table = {round(k, 6): v for k, v in table.items()}
        self.default = default
        self.calls = []
        self.plans = {}

    def __call__(self, plan, rho):
        assert plan.shape == (H, W, 6)
        self.calls.append(round(rho, 6))
        self.plans[round(rho, 6)] = plan
        return self.table.get(round(rho, 6), self.default).copy()


def test_stops_at_merge_and_keeps_previous_step():
    feats, _, fg_ref, bg_ref = _scene()
    m = _masks(fg_ref)
    stub = Stub({0.75: m['full'], 0.8: m['full']}, m['dots'])
    scan = POTScan(merge_rule='component', max_component_area=50)
    res = scan(feats, fg_ref, bg_ref, stub)
    assert stub.calls == [0.6, 0.65, 0.7, 0.75, 0.8]
    assert [s.rho for s in res.history] == [0.6, 0.65, 0.7, 0.75]
    assert [s.accepted for s in res.history] == [True, True, True, False]
    assert res.history[-1].merged and res.history[-1].largest_component == (
        IMG * IMG)
    assert res.stopped_by == 'merge'
    assert res.rho == 0.7
    assert np.array_equal(res.foreground, m['dots'])
    # The kept plan is the one handed to to_foreground at rho = 0.7 ...
    assert res.plan is stub.plans[0.7]
    assert res.plan.dtype == res.cost.dtype == torch.float64  # ot_dtype
    assert abs(float(res.plan.sum()) - 0.7) < 1e-5
    torch.testing.assert_close(
        res.plan.reshape(-1, 6), partial_ot(res.cost, 0.7))
    # ... and the expanded mask is two steps further.
    assert res.expanded_rho == 0.8
    assert np.array_equal(res.expanded_foreground, m['full'])


def test_regions_merge_rule_of_the_official_is_mask_valid():
    """A step whose largest component joins more than 5 components of the
    accepted mask is a merge, even far below the area limit (official
    ``is_mask_valid``: top-3 components, > 5 overlapped regions)."""
    feats, _, fg_ref, bg_ref = _scene()
    ref = np.zeros((IMG, IMG), bool)
    ref[20:24, :4] = True  # image-scale reference, apart from the blobs
    blobs = ref.copy()
    for k in range(6):  # six separate 2x2 blobs along one row
        blobs[2:4, 4 * k:4 * k + 2] = True
    joined = blobs.copy()
    joined[2:4, :] = True  # one 48 px bar over all six
    five = blobs.copy()
    five[2:4, :18] = True  # joins exactly five
    for bar, stops in ((joined, True), (five, False)):
        # Every step covers the reference, so the gate is open.
        stub = Stub({0.6: blobs}, bar)
        scan = POTScan(rho_max=0.65, max_merged_regions=5, expand_steps=0)
        res = scan(feats, fg_ref, bg_ref, stub, fg_ref_image=ref)
        step = res.history[1]
        assert step.coverage == 1.0
        assert step.largest_component < scan.max_component_area
        assert step.merged_regions == (6 if stops else 5)
        assert step.merged is stops
        assert res.rho == (0.6 if stops else 0.65)
    # Off (None): area alone decides, the joined bar is accepted.
    stub = Stub({0.6: blobs}, joined)
    res = POTScan(rho_max=0.65, expand_steps=0)(
        feats, fg_ref, bg_ref, stub, fg_ref_image=ref)
    assert res.rho == 0.65 and res.history[1].merged_regions == 0
    with pytest.raises(ValueError, match='max_merged_regions'):
        POTScan(max_merged_regions=-1)
    with pytest.raises(ValueError, match='merge_top_n'):
        POTScan(merge_top_n=0)


def test_never_merging_stops_at_rho_max():
    feats, _, fg_ref, bg_ref = _scene()
    m = _masks(fg_ref)
    stub = Stub({}, m['dots'])
    res = POTScan(merge_rule='component', max_component_area=50)(
        feats, fg_ref, bg_ref, stub)
    expected = [0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 1.0]
    assert [s.rho for s in res.history] == expected
    assert stub.calls == expected  # expanded mask reused, not recomputed
    assert res.stopped_by == 'rho_max' and res.rho == 1.0
    assert res.expanded_rho == 1.0
    assert abs(float(res.plan.sum()) - 1.0) < 1e-5
    assert all(s.converged for s in res.history)


def test_gated_rule_accepts_big_components_until_covering():
    feats, _, fg_ref, bg_ref = _scene()
    m = _masks(fg_ref)
    table = {0.7: m['bottom'], 0.75: m['full']}
    # 'gated' (official): 0.7 has a big component but covers none of the
    # reference -> accepted; 0.75 covers it and is big -> merge.
    res = POTScan(max_component_area=150)(feats, fg_ref, bg_ref,
                                          Stub(table, m['dots']))
    assert res.rho == 0.7 and res.stopped_by == 'merge'
    assert res.history[2].coverage == 0.0 and not res.history[2].merged
    assert res.history[3].coverage == 1.0 and res.history[3].merged
    # 'component': the big component alone already merges at 0.7.
    res = POTScan(max_component_area=150, merge_rule='component')(
        feats, fg_ref, bg_ref, Stub(table, m['dots']))
    assert res.rho == 0.65


def test_any_rule_stops_on_coverage():
    feats, _, fg_ref, bg_ref = _scene()
    m = _masks(fg_ref)
    # Covers the reference: two 3x3-cell blocks touching diagonally, one
    # 8-connected component of 2 * 9 * 4 = 72 px (4-connected: 36 px).
    table = {0.65: m['ref']}
    res = POTScan(max_component_area=150, merge_rule='any')(
        feats, fg_ref, bg_ref, Stub(table, m['dots']))
    assert res.rho == 0.6 and len(res.history) == 2
    assert res.history[1].largest_component == 72
    res4 = POTScan(max_component_area=150, merge_rule='any',
                   connectivity=1)(feats, fg_ref, bg_ref,
                                   Stub(table, m['dots']))
    assert res4.history[1].largest_component == 36
    res = POTScan(max_component_area=150)(feats, fg_ref, bg_ref,
                                          Stub(table, m['dots']))
    assert res.stopped_by == 'rho_max'


def test_first_step_is_always_kept():
    feats, _, fg_ref, bg_ref = _scene()
    m = _masks(fg_ref)
    res = POTScan(max_component_area=50)(feats, fg_ref, bg_ref,
                                         Stub({}, m['full']))
    assert [s.rho for s in res.history] == [0.6, 0.65]
    assert res.history[0].merged and res.history[0].accepted
    assert res.rho == 0.6 and res.expanded_rho == 0.7


def test_image_reference_and_flat_features():
    feats, _, fg_ref, bg_ref = _scene()
    m = _masks(fg_ref)
    ref_img = np.zeros((IMG, IMG), bool)
    ref_img[12:, :4] = True  # inside 'bottom'
    table = {0.7: m['bottom']}
    res = POTScan(max_component_area=150)(
        feats.reshape(H * W, -1), fg_ref, bg_ref, Stub(table, m['dots']),
        fg_ref_image=ref_img)
    assert res.rho == 0.65 and res.history[-1].coverage == 1.0


def test_prototypes_and_activation_follow_the_nuclei():
    feats, fg, fg_ref, bg_ref = _scene()
    m = _masks(fg_ref)
    res = POTScan(merge_rule='component', max_component_area=50)(
        feats, fg_ref, bg_ref, Stub({0.7: m['full']}, m['dots']))
    assert res.fg_cols == (0, 1, 2) and res.bg_cols == (3, 4, 5)
    maps = activation_maps(res.plan, res.fg_cols, res.bg_cols, (H, W))
    assert maps.shape == (H, W, 2)
    act = maps.numpy()
    # Foreground prototypes attract the nuclei features everywhere, also
    # outside the reference they were built from.
    assert act[..., 0][fg].min() > act[..., 0][~fg].max()
    assert act[..., 1][~fg].min() > act[..., 1][fg].max()


def test_activation_maps_hand_example():
    plan = torch.tensor([[0.10, 0.05, 0.00, 0.05],
                         [0.00, 0.00, 0.20, 0.05],
                         [0.05, 0.05, 0.05, 0.05],
                         [0.00, 0.10, 0.00, 0.00]])  # N = 4, rows <= 1/4
    raw = activation_maps(plan, [0, 1], [2, 3], (2, 2), per_position=False)
    torch.testing.assert_close(
        raw, torch.tensor([[[0.15, 0.05], [0.0, 0.25]],
                           [[0.10, 0.10], [0.10, 0.0]]]))
    frac = activation_maps(plan, [0, 1], [2, 3], (2, 2), slack_to_bg=True)
    torch.testing.assert_close(frac.sum(-1), torch.ones(2, 2))
    torch.testing.assert_close(frac[1, 1], torch.tensor([0.4, 0.6]))
    sim = torch.full_like(plan, 0.5)
    sim[:, 0] = 1.0
    weighted = activation_maps(plan.reshape(2, 2, 4), [0, 1], [2, 3],
                               (2, 2), similarity=sim, per_position=False)
    torch.testing.assert_close(weighted[0, 0], torch.tensor([0.125, 0.025]))
    with pytest.raises(ValueError, match='feature grid'):
        activation_maps(plan, [0, 1], [2, 3], (3, 2))
    with pytest.raises(ValueError, match='fg_cols/bg_cols'):
        activation_maps(plan, [0, 1], [2, 4], (2, 2))


def test_errors():
    feats, _, fg_ref, bg_ref = _scene()
    m = _masks(fg_ref)
    scan = POTScan()
    with pytest.raises(ValueError, match='fg_ref selects no features'):
        scan(feats, np.zeros_like(fg_ref), bg_ref, Stub({}, m['dots']))
    with pytest.raises(ValueError, match='do not match fg_ref'):
        scan(feats[:, :10], fg_ref, bg_ref, Stub({}, m['dots']))
    with pytest.raises(ValueError, match='to_foreground output must be'):
        scan(feats, fg_ref, bg_ref, lambda p, r: m['dots'].astype(np.uint8))
    with pytest.raises(ValueError, match='changed shape'):
        scan(feats, fg_ref, bg_ref,
             Stub({0.65: np.zeros((5, 5), bool)}, m['dots']))
    with pytest.raises(ValueError, match='rho0'):
        POTScan(rho0=0.8, rho_max=0.7)
    with pytest.raises(ValueError, match='merge_rule'):
        POTScan(merge_rule='either')
    with pytest.raises(ValueError, match='ot_dtype'):
        POTScan(ot_dtype='int32')


def test_registered_and_grid():
    scan = TASK_UTILS.build(dict(type='POTScan', rho0=0.3, step=0.1,
                                 rho_max=0.95))
    assert isinstance(scan, POTScan)
    assert scan.rhos() == [0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
