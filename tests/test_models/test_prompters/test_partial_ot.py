import math
import warnings

import numpy as np
import ot
import pytest
import torch

from nucseg.models.prompters.partial_ot import partial_ot

INF = float('inf')


def _cost(n, m, seed=0, batch=(), dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return 2 * torch.rand(*batch, n, m, generator=g, dtype=dtype)


def _extended(cost, rho):
    n, m = cost.shape
    c_ext = np.concatenate([cost.numpy(), np.zeros((n, 1))], axis=1)
    a = np.full(n, 1.0 / n)
    b = np.array([rho / m] * m + [1 - rho])
    return a, b, c_ext


@pytest.mark.parametrize('lambd', [1.0, INF])
@pytest.mark.parametrize('shape', [(40, 6), (97, 4), (5, 2)])
@pytest.mark.parametrize('rho', [0.2, 0.6, 0.95, 1.0])
def test_mass_equals_rho(rho, shape, lambd):
    n, m = shape
    plan, info = partial_ot(
        _cost(n, m), rho, lambd=lambd, tol=1e-10, max_iter=20000,
        return_info=True)
    assert info.converged and info.err <= 1e-10
    assert plan.shape == (n, m)
    assert (plan >= 0).all()
    assert abs(float(plan.sum()) - rho) < 1e-8
    # Rows carry at most their 1/N mass; the rest is the slack.
    assert float(plan.sum(1).max()) <= 1.0 / n + 1e-10
    if rho == 1.0:
        torch.testing.assert_close(plan.sum(1),
                                   torch.full_like(plan[:, 0], 1.0 / n))


def test_not_scaled_by_n():
    # The official code returns N * plan (total mass 2.4 for rho = 0.6).
    plan = partial_ot(_cost(100, 6), 0.6)
    assert abs(float(plan.sum()) - 0.6) < 1e-5


@pytest.mark.parametrize('rho', [0.3, 0.6, 0.9, 1.0])
def test_balanced_mode_matches_pot_sinkhorn(rho):
    cost = _cost(60, 6, seed=1)
    a, b, c_ext = _extended(cost, rho)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # log(0) of the empty slack at 1
        ref = ot.sinkhorn(
            a, b, c_ext, reg=0.1, method='sinkhorn_log', numItermax=20000,
            stopThr=1e-14)
    ours = partial_ot(cost, rho, lambd=INF, tol=1e-13, max_iter=20000)
    np.testing.assert_allclose(ours.numpy(), ref[:, :6], rtol=0, atol=1e-12)
    # A large finite KL weight approaches the balanced problem (its error
    # plateaus near eps / lambd, hence the looser tolerance).
    big, info = partial_ot(cost, rho, lambd=1e6, tol=1e-6, max_iter=2000,
                           return_info=True)
    assert info.converged
    np.testing.assert_allclose(big.numpy(), ref[:, :6], rtol=0, atol=1e-7)


@pytest.mark.parametrize('rho', [0.3, 0.7])
def test_soft_slack_matches_pot_semi_relaxed(rho):
    # slack_weight = lambd is Eq. 12 (every column KL-relaxed, rows exact):
    # POT's semi-relaxed unbalanced Sinkhorn with reg_m = (inf, lambd) and
    # the plain entropy regulariser solves the same problem.
    cost = _cost(50, 6, seed=2)
    a, b, c_ext = _extended(cost, rho)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # reg_type='entropy' notice
        ref = ot.unbalanced.sinkhorn_unbalanced(
            a, b, c_ext, reg=0.1, reg_m=(INF, 1.0), reg_type='entropy',
            numItermax=100000, stopThr=1e-15)
    ours = partial_ot(
        cost, rho, lambd=1.0, slack_weight=1.0, tol=1e-14, max_iter=100000)
    np.testing.assert_allclose(ours.numpy(), ref[:, :6], rtol=0, atol=1e-12)
    # The soft slack does not keep the transported mass at rho ...
    assert abs(float(ours.sum()) - rho) > 1e-3
    # ... the exact slack (default) does.
    exact = partial_ot(cost, rho, lambd=1.0, tol=1e-12, max_iter=100000)
    assert abs(float(exact.sum()) - rho) < 1e-9


@pytest.mark.parametrize('rho', [0.25, 0.6, 0.9])
@pytest.mark.parametrize('lambd', [0.3, 1.0, 5.0])
def test_semi_relaxed_kkt(rho, lambd):
    # Stationarity of Eq. 14 + entropy, rows and slack held exactly:
    # eps log T_ij + C_ij + lambd log(c_j / beta_j) = u_i  (j <= M) and
    # eps log eta_i = u_i + v, so eps log(T_ij / eta_i) + C_ij
    # + lambd log(c_j / beta_j) is the same constant for all i, j.
    n, m, eps = 45, 6, 0.1
    cost = _cost(n, m, seed=3)
    plan, info = partial_ot(
        cost, rho, eps=eps, lambd=lambd, tol=1e-13, max_iter=100000,
        return_info=True)
    assert info.converged
    eta = 1.0 / n - plan.sum(1)
    assert (eta > 0).all()
    assert abs(float(eta.sum()) - (1 - rho)) < 1e-10
    colsum = plan.sum(0)
    g = (eps * torch.log(plan / eta[:, None]) + cost +
         lambd * torch.log(colsum / (rho / m)))
    assert float(g.max() - g.min()) < 1e-8
    # Sanity: the test detects a non-optimal plan (the balanced one).
    bal = partial_ot(cost, rho, eps=eps, lambd=INF, tol=1e-13,
                     max_iter=100000)
    eta_b = 1.0 / n - bal.sum(1)
    g_b = (eps * torch.log(bal / eta_b[:, None]) + cost +
           lambd * torch.log(bal.sum(0) / (rho / m)))
    assert float(g_b.max() - g_b.min()) > 1e-3


def test_batched_equals_loop():
    cost = _cost(30, 4, seed=4, batch=(2, 3))
    rho = torch.tensor([[0.3], [0.8]], dtype=torch.float64)  # per batch row
    plan, info = partial_ot(cost, rho, tol=1e-12, max_iter=20000,
                            return_info=True)
    assert plan.shape == (2, 3, 30, 4) and info.converged
    for i in range(2):
        for j in range(3):
            single = partial_ot(cost[i, j], float(rho[i, 0]), tol=1e-12,
                                max_iter=20000)
            torch.testing.assert_close(plan[i, j], single, rtol=0,
                                       atol=1e-12)
            assert abs(float(plan[i, j].sum()) - float(rho[i, 0])) < 1e-9


def test_float32_and_small_eps():
    cost64 = _cost(200, 6, seed=5)
    p64 = partial_ot(cost64, 0.6, tol=1e-9, max_iter=5000)
    p32 = partial_ot(cost64.float(), 0.6, tol=1e-5, max_iter=5000)
    assert p32.dtype == torch.float32
    assert float((p32.double() - p64).abs().max()) < 1e-6
    # exp(-2 / 0.01) underflows in float32: the log domain does not care.
    tiny, info = partial_ot(cost64.float(), 0.6, eps=0.01, tol=1e-4,
                            max_iter=20000, return_info=True)
    assert info.converged
    assert torch.isfinite(tiny).all()
    assert abs(float(tiny.sum()) - 0.6) < 1e-3


def test_iteration_limit_and_info():
    plan, info = partial_ot(_cost(50, 6), 0.6, max_iter=3, tol=0.0,
                            return_info=True)
    assert info.n_iter == 3 and not info.converged
    assert math.isfinite(info.err) and info.err > 1e-4
    assert torch.isfinite(plan).all()
    # The stopping error bounds the returned plan's marginal violations.
    bound = math.expm1(info.err)
    assert abs(float(plan.sum()) - 0.6) <= bound + 1e-12
    assert float(plan.sum(1).max()) * 50 <= 1 + bound + 1e-12
    _, info = partial_ot(_cost(50, 6), 0.6, max_iter=10, tol=0.0,
                         check_every=4, return_info=True)
    assert info.n_iter == 10


def test_lambd_zero_is_per_row_softmax():
    # Without the column penalty each row splits its transported share by
    # softmax(-C / eps) over the prototypes.
    cost = _cost(20, 5, seed=6)
    plan = partial_ot(cost, 0.5, lambd=0.0, tol=1e-13, max_iter=10000)
    rows = plan / plan.sum(1, keepdim=True)
    torch.testing.assert_close(rows, torch.softmax(-cost / 0.1, dim=1))
    assert abs(float(plan.sum()) - 0.5) < 1e-10


@pytest.mark.parametrize('rho', [0.0, -0.1, 1.5, float('nan')])
def test_rejects_bad_rho(rho):
    with pytest.raises(ValueError, match='rho'):
        partial_ot(_cost(10, 4), rho)


def test_rejects_bad_inputs():
    cost = _cost(10, 4)
    bad = cost.clone()
    bad[0, 0] = float('nan')
    with pytest.raises(ValueError, match='NaN or inf'):
        partial_ot(bad, 0.5)
    bad[0, 0] = float('inf')
    with pytest.raises(ValueError, match='NaN or inf'):
        partial_ot(bad, 0.5)
    with pytest.raises(ValueError, match=r'\(\.\.\., N, M\)'):
        partial_ot(cost[0], 0.5)
    with pytest.raises(ValueError, match='torch.Tensor'):
        partial_ot(cost.numpy(), 0.5)
    with pytest.raises(ValueError, match='floating'):
        partial_ot(torch.ones(3, 2, dtype=torch.long), 0.5)
    with pytest.raises(ValueError, match='eps'):
        partial_ot(cost, 0.5, eps=0.0)
    with pytest.raises(ValueError, match='lambd'):
        partial_ot(cost, 0.5, lambd=-1.0)
    with pytest.raises(ValueError, match='max_iter'):
        partial_ot(cost, 0.5, max_iter=0)
    with pytest.raises(ValueError, match='broadcast'):
        partial_ot(_cost(10, 4, batch=(3, )), torch.full((2, ), 0.5))


@pytest.mark.parametrize('dtype,eps', [(torch.float64, 0.1),
                                       (torch.float32, 0.1),
                                       (torch.float32, 0.02)])
def test_kernel_products_equal_logsumexp(dtype, eps):
    cost = _cost(300, 6, seed=7, dtype=dtype)
    if eps < 0.1:
        # A far prototype: its scaling b dwarfs the others by ~e^100, so
        # the float32 kernel products underflow on some half-steps.
        cost[:, 0] += 2
    ref, info_ref = partial_ot(cost, 0.6, eps=eps, max_iter=60, tol=0.0,
                               kernel_products=False, return_info=True)
    fast, info = partial_ot(cost, 0.6, eps=eps, max_iter=60, tol=0.0,
                            return_info=True)
    assert info_ref.fallback_steps == 120
    if eps == 0.1:
        assert info.fallback_steps == 0
    else:
        assert 0 < info.fallback_steps < 120
    scale = float(ref.max())
    tol = 1e-12 if dtype == torch.float64 else 1e-4
    assert float((fast - ref).abs().max()) <= tol * scale


def test_float32_stops_at_its_resolution():
    # |delta log b| cannot fall below a few float32 ulps of |log b| (~1e-6
    # here): the solver stops there instead of running to max_iter.
    cost = _cost(300, 6, seed=8, dtype=torch.float32)
    plan, info = partial_ot(cost, 0.6, lambd=INF, tol=1e-9, max_iter=3000,
                            return_info=True)
    assert info.converged and info.n_iter < 3000
    assert 1e-9 < info.err < 2e-5
    assert abs(float(plan.sum()) - 0.6) <= math.expm1(info.err) + 1e-6
    _, info64 = partial_ot(cost.double(), 0.6, lambd=INF, tol=1e-9,
                           max_iter=3000, return_info=True)
    assert info64.converged and info64.err <= 1e-9
