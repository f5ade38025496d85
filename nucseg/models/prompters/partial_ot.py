"""Entropic partial optimal transport with a slack column (SPROUT, Eq. 4).

SPROUT transports a fraction ``rho`` of the uniform source mass (the ``N``
flattened feature positions) to ``M = 2K`` prototypes:

.. math::

    \\min_{T \\in \\Pi} \\langle T, C \\rangle_F
        + \\lambda \\mathrm{KL}(T^\\top 1_N \\| \\tfrac{\\rho}{M} 1_M),
    \\quad \\Pi = \\{T \\ge 0 : T 1_M \\le \\tfrac{1}{N} 1_N,\\;
        1_N^\\top T 1_M = \\rho\\}.

Appendix A.3-A.5 of the paper append a slack column that absorbs the
untransported mass ``1 - rho``: extended cost ``[C, 0]`` (``N x (M+1)``),
rows fixed to ``1/N``, column prior ``beta = [rho/M, ..., rho/M, 1 - rho]``,
the prototype columns relaxed by a KL penalty of weight ``lambd`` and the
slack column held exactly (weight ``iota -> inf``). With entropic
regularisation ``eps`` the problem is solved by the semi-relaxed scaling
algorithm (Algorithm 2), implemented here in the log domain.

As ``lambd -> inf`` the update exponent ``lambd / (lambd + eps)`` becomes 1
and the problem is the balanced entropic OT of ``[C, 0]`` with column
masses ``beta`` (what ``ot.sinkhorn`` solves); ``lambd=float('inf')``
selects that mode exactly.
"""
import math
from typing import NamedTuple, Tuple, Union

import torch

__all__ = ['PartialOTInfo', 'partial_ot']

RhoLike = Union[float, torch.Tensor]


class PartialOTInfo(NamedTuple):
    """Solver diagnostics returned with ``return_info=True``.

    Attributes:
        n_iter (int): Completed scaling iterations (lines 10-11 of
            Algorithm 2).
        converged (bool): Whether the stopping error fell to ``tol`` (or
            to the dtype's resolution, see :func:`partial_ot`) before
            ``max_iter`` (for a batch: every problem did).
        err (float): Last stopping error, the largest absolute change of
            ``log b`` over the batch (``inf`` if it was never measured).
        fallback_steps (int): Half-steps (lines 10 or 11) evaluated with
            ``torch.logsumexp`` because the kernel products would have left
            the normal floating-point range (all of them when
            ``kernel_products=False``).
    """
    n_iter: int
    converged: bool
    err: float
    fallback_steps: int = 0


class _LogSumExp:
    """The two log-sum-exps of the scaling iteration for a fixed ``log Q``.

    ``LSE_j(log Q_ij + log b_j)`` (line 10) and ``LSE_i(log Q_ij + log a_i)``
    (line 11) are evaluated exactly as products with max-normalised kernels,
    e.g. ``rowmax_i + max(log b) + log(sum_j K_ij exp(log b_j - max log
    b))`` with ``K = exp(log Q - rowmax)``, which is ~5x faster than
    ``torch.logsumexp`` over a short last axis. When a product falls below
    the range where it is accurate to machine precision (tiny / eps per
    summand), that half-step uses ``torch.logsumexp`` instead.

    Args:
        log_q (torch.Tensor): ``-C / eps`` of shape (..., N, M+1).
        kernel_products (bool): Use the kernel products at all.
    """

    def __init__(self, log_q: torch.Tensor, kernel_products: bool) -> None:
        self.log_q = log_q
        self.kernel_products = kernel_products
        self.fallbacks = 0
        if kernel_products:
            finfo = torch.finfo(log_q.dtype)
            self.row_max = log_q.amax(-1)
            self.col_max = log_q.amax(-2)
            self.k_row = torch.exp(log_q - self.row_max[..., None])
            self.k_col = torch.exp(log_q - self.col_max[..., None, :])
            n, m1 = log_q.shape[-2:]
            self.row_floor = finfo.tiny / finfo.eps * m1
            self.col_floor = finfo.tiny / finfo.eps * n

    def rows(self, log_b: torch.Tensor) -> torch.Tensor:
        """``LSE_j(log Q_ij + log b_j)``, shape (..., N)."""
        if self.kernel_products:
            shift = log_b.amax(-1, keepdim=True)
            prod = (self.k_row @ torch.exp(log_b - shift)[..., None])[..., 0]
            if bool((prod > self.row_floor).all()):
                return self.row_max + shift + torch.log(prod)
        self.fallbacks += 1
        return torch.logsumexp(self.log_q + log_b[..., None, :], -1)

    def cols(self, log_a: torch.Tensor) -> torch.Tensor:
        """``LSE_i(log Q_ij + log a_i)``, shape (..., M+1)."""
        if self.kernel_products:
            shift = log_a.amax(-1, keepdim=True)
            weights = torch.exp(log_a - shift)[..., None, :]
            prod = (weights @ self.k_col)[..., 0, :]
            if bool((prod > self.col_floor).all()):
                return self.col_max + shift + torch.log(prod)
        self.fallbacks += 1
        return torch.logsumexp(self.log_q + log_a[..., :, None], -2)


def _check_weight(name: str, value: float, allow_zero: bool) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f'{name} must be a number, got {value!r}') from None
    if math.isnan(value) or value < 0 or (value == 0 and not allow_zero):
        bound = '>= 0' if allow_zero else '> 0'
        raise ValueError(f'{name} must be {bound} (inf allowed), got {value}')
    return value


def _exponent(weight: float, eps: float) -> float:
    """Semi-relaxed update exponent ``f = w / (w + eps)`` (1 for w=inf)."""
    return 1.0 if math.isinf(weight) else weight / (weight + eps)


def _validate_cost(cost: torch.Tensor) -> torch.Tensor:
    if not isinstance(cost, torch.Tensor):
        raise ValueError(
            f'cost must be a torch.Tensor, got {type(cost).__name__}')
    if cost.dim() < 2:
        raise ValueError(
            f'cost must have shape (..., N, M), got {tuple(cost.shape)}')
    if cost.shape[-2] < 1 or cost.shape[-1] < 1:
        raise ValueError(
            f'cost needs N >= 1 rows and M >= 1 columns, got '
            f'{tuple(cost.shape)}')
    if not cost.is_floating_point():
        raise ValueError(f'cost must be floating point, got {cost.dtype}')
    if not bool(torch.isfinite(cost).all()):
        raise ValueError('cost contains NaN or inf')
    if cost.dtype in (torch.float16, torch.bfloat16):
        cost = cost.float()
    return cost


def _validate_rho(rho: RhoLike, cost: torch.Tensor) -> torch.Tensor:
    batch_shape = cost.shape[:-2]
    rho_t = torch.as_tensor(rho, dtype=cost.dtype, device=cost.device)
    if not bool(torch.isfinite(rho_t).all()) or bool(
            ((rho_t <= 0) | (rho_t > 1)).any()):
        raise ValueError(f'rho must lie in (0, 1], got {rho}')
    try:
        rho_t = torch.broadcast_to(rho_t, batch_shape)
    except RuntimeError:
        raise ValueError(
            f'rho of shape {tuple(rho_t.shape)} does not broadcast to the '
            f'batch shape {tuple(batch_shape)} of cost') from None
    return rho_t


def partial_ot(cost: torch.Tensor,
               rho: RhoLike,
               eps: float = 0.1,
               lambd: float = 1.0,
               max_iter: int = 1000,
               tol: float = 1e-6,
               slack_weight: float = float('inf'),
               check_every: int = 1,
               kernel_products: bool = True,
               return_info: bool = False
               ) -> Union[torch.Tensor, Tuple[torch.Tensor, PartialOTInfo]]:
    """Solve SPROUT's entropic partial OT (Eq. 4) by Algorithm 2.

    Log-domain transcription of Algorithm 2 (scaling algorithm for partial
    OT), with ``log a``, ``log b`` and ``log Q`` in place of ``a``, ``b``,
    ``Q`` so that small ``eps`` cannot underflow:

    ====  ===============================  ==================================
    Alg.  paper                            here
    ====  ===============================  ==================================
    1     inputs C, eps, lambda, rho, iota ``cost, eps, lambd, rho,
                                           slack_weight``
    2     C <- [C, 0_N]                    ``cost_ext`` (..., N, M+1)
    3     lambda <- [lambda 1_M, iota]     per-column weights
    4     beta <- [rho/M 1_M, 1 - rho]     ``log_beta``
    5     alpha <- 1/N 1_N                 ``log_alpha = -log N``
    6     b <- 1_{M+1}                     ``log_b = 0``
    7     Q <- exp(-C / eps)               ``log_q = -cost_ext / eps``
    8     f <- lambda / (lambda + eps)     ``f`` (1 for an infinite weight)
    9     while b does not converge        ``max |delta log b| > tol`` and
                                           ``n_iter < max_iter``
    10    a <- alpha / (Q b)               ``log_a = log_alpha -
                                           LSE_j(log_q + log_b)``
    11    b <- (beta / (Q^T a))^f          ``log_b = f * (log_beta -
                                           LSE_i(log_q + log_a))``
    12    T <- diag(a) Q diag(b)           formed once after the loop (the
                                           same T as the last iteration's)
    14    return T[:, :K]                  ``T[..., :M]`` (the paper's K here
                                           means the M prototype columns)
    ====  ===============================  ==================================

    Line 10 reads ``M b`` in the paper; ``M`` there is the kernel ``Q``.
    Unlike the official code, the loop has a real iteration limit and the
    plan is *not* multiplied by ``N``: its total mass is ``rho`` (up to the
    tolerance), its rows sum to at most ``1/N``.

    Stopping: the error is the largest absolute change of ``log b`` in one
    iteration, i.e. ``b`` converged in relative terms. With ``f = 1`` this
    equals ``max_j |log(beta_j / colsum_j)|`` for the plan after line 10,
    the relative column-marginal violation. The returned plan is the one of
    line 12: the slack column holds exactly ``1 - rho`` (for an infinite
    ``slack_weight``) and each row sum lies within a factor ``exp(+-err)``
    of ``1/N`` (it is a weighted mean of the last ``b`` ratios), so
    ``|plan.sum() - rho| <= expm1(err)``. For a large finite ``lambd`` the
    exponent is close to 1 and the error settles at order ``eps / lambd``
    instead of vanishing; use ``lambd=float('inf')`` for that limit.
    Rounding keeps the error above a few ulps of ``|log b|`` (about 1e-6 to
    1e-5 in float32, where ``|log b|`` reaches ~10-20 for costs in
    [0, 2] and ``eps = 0.1``): the loop also stops, as converged, once the
    error is at most ``4 * finfo(dtype).eps * max(1, max |log b|)``.

    Args:
        cost (torch.Tensor): Cost matrices of shape (..., N, M), finite;
            leading dimensions are independent problems. Half precision is
            computed in float32.
        rho (float | torch.Tensor): Transported mass in (0, 1]; a tensor
            must broadcast to the batch shape ``cost.shape[:-2]``.
        eps (float): Entropic regularisation epsilon > 0.
        lambd (float): KL weight lambda >= 0 on the prototype columns'
            marginal; ``float('inf')`` makes them exact (balanced entropic
            OT on the extended problem).
        max_iter (int): Iteration cap (>= 1).
        tol (float): Stopping threshold >= 0 on ``max |delta log b|``.
        slack_weight (float): KL weight iota > 0 of the slack column. The
            default ``inf`` holds the slack mass exactly (the limit of the
            proof in A.4 and the official code); a finite value gives the
            soft surrogate of Eq. 12 when equal to ``lambd``.
        check_every (int): Measure the stopping error every this many
            iterations (each check synchronises with the device).
        kernel_products (bool): Evaluate the log-sum-exps of lines 10-11
            as products with max-normalised kernels (exact identity, ~5x
            faster on CPU for N x 7 kernels), falling back to
            ``torch.logsumexp`` for any half-step whose products would
            underflow. ``False`` uses ``torch.logsumexp`` throughout
            (reference path). Each product check synchronises with the
            device.
        return_info (bool): Also return a :class:`PartialOTInfo`.

    Returns:
        torch.Tensor | tuple[torch.Tensor, PartialOTInfo]: The plan of
        shape (..., N, M) (slack column dropped) in the dtype of ``cost``
        (float32 for half inputs), and the diagnostics if requested.

    Raises:
        ValueError: If ``cost`` is not a finite floating tensor with at
            least two dimensions, ``rho`` is outside (0, 1] or does not
            broadcast, or a numeric parameter is out of range.
    """
    cost = _validate_cost(cost)
    rho_t = _validate_rho(rho, cost)
    eps = _check_weight('eps', eps, allow_zero=False)
    if math.isinf(eps):
        raise ValueError('eps must be finite')
    lambd = _check_weight('lambd', lambd, allow_zero=True)
    slack_weight = _check_weight(
        'slack_weight', slack_weight, allow_zero=False)
    if int(max_iter) != max_iter or max_iter < 1:
        raise ValueError(f'max_iter must be an integer >= 1, got {max_iter}')
    if int(check_every) != check_every or check_every < 1:
        raise ValueError(
            f'check_every must be an integer >= 1, got {check_every}')
    tol = _check_weight('tol', tol, allow_zero=True)

    n, m = cost.shape[-2], cost.shape[-1]
    dtype, device = cost.dtype, cost.device
    # Line 2: extended cost [C, 0_N]; line 7: Q = exp(-C / eps), log domain.
    cost_ext = torch.cat([cost, cost.new_zeros(cost.shape[:-1] + (1, ))],
                         dim=-1)
    log_q = cost_ext / -eps
    # Line 3 and 8: per-column weights [lambda 1_M, iota] -> exponents f.
    f = torch.full((m + 1, ), _exponent(lambd, eps), dtype=dtype,
                   device=device)
    f[-1] = _exponent(slack_weight, eps)
    # Line 4: beta = [rho/M 1_M, 1 - rho] (log(0) = -inf for rho = 1).
    log_beta = torch.cat([
        torch.log(rho_t / m)[..., None].expand(rho_t.shape + (m, )),
        torch.log1p(-rho_t)[..., None]
    ], dim=-1)
    # Line 5: alpha = 1/N 1_N.
    log_alpha = -math.log(n)
    # Line 6: b = 1_{M+1}.
    log_b = cost.new_zeros(cost.shape[:-2] + (m + 1, ))
    lse = _LogSumExp(log_q, kernel_products)
    resolution = 4 * torch.finfo(dtype).eps

    err = float('inf')
    converged = False
    n_iter = 0
    # Line 9: while b does not converge (with a real iteration limit).
    while n_iter < max_iter:
        # Line 10: a = alpha / (Q b).
        log_a = log_alpha - lse.rows(log_b)
        # Line 11: b = (beta / (Q^T a))^f.
        log_b_new = f * (log_beta - lse.cols(log_a))
        n_iter += 1
        if n_iter % check_every == 0 or n_iter == max_iter:
            # -inf - -inf (an empty slack column at rho = 1) is no change.
            delta = torch.nan_to_num(log_b_new - log_b, nan=0.0)
            # Rounding floor: a few ulps of the largest finite |log b|.
            floor = torch.nan_to_num(log_b_new.abs(), posinf=0.0).max()
            err, floor = (float(x) for x in torch.stack(
                [delta.abs().max(), resolution * floor.clamp_min(1.0)]))
            log_b = log_b_new
            if err <= max(tol, floor):
                converged = True
                break
        else:
            log_b = log_b_new
    # Line 12: T = diag(a) Q diag(b); line 14: drop the slack column.
    plan = torch.exp(log_a[..., :, None] + log_q[..., :m] +
                     log_b[..., None, :m])
    if return_info:
        return plan, PartialOTInfo(n_iter, converged, err, lse.fallbacks)
    return plan
