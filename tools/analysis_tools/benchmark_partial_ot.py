"""Benchmark :func:`partial_ot` against POT on SPROUT-sized problems.

The cost is Eq. 3 (``1 - cos``) between ``N`` seeded random features and
``M`` prototypes; the default ``N = 62500`` is a 1000x1000 image on a
4-px feature grid, ``M = 6`` is 2K prototypes with K = 3. Three problems
are solved in the same run, with the same ``eps``, tolerance value and
iteration cap:

- ``balanced``: the large-lambda limit (``lambd=inf``), i.e. balanced
  entropic OT of ``[C, 0]`` with column masses ``[rho/M, ..., 1 - rho]``;
  baseline ``ot.sinkhorn`` (Sinkhorn-Knopp, float64), also its log-domain
  variant and POT on float32 torch tensors.
- ``eq12``: every column KL-relaxed with weight ``lambd`` (the soft slack
  of Eq. 12, ``slack_weight=lambd``); baseline
  ``ot.unbalanced.sinkhorn_unbalanced(reg_m=(inf, lambd),
  reg_type='entropy')``, which solves the same problem.
- ``partial``: the paper's problem (exact slack, KL on the prototype
  columns); POT has no solver for per-column marginal weights, so only our
  float32 run is compared with our float64 run.

The stopping rules differ (ours: ``max |delta log b|``; ``ot.sinkhorn``:
L2 column-marginal violation every 10 iterations; unbalanced: relative
change of the scalings), hence the iteration counts and ms/iteration are
printed too. ``--fixed-iters`` sets the tolerances to 0 so that POT runs
to the cap; ours still stops once its error reaches the dtype's rounding
floor (see :func:`partial_ot`), so compare ms/iteration there.

Example::

    python tools/analysis_tools/benchmark_partial_ot.py --n 62500 --m 6 \\
        --rho 0.6 --eps 0.1 --lambd 1.0 --tol 1e-6 --max-iter 1000 \\
        --out work_dirs/benchmark_partial_ot.json
"""
import argparse
import json
import sys
import time
import warnings
from typing import Callable, Dict, List, Tuple

import numpy as np
import ot
import torch

from nucseg.models.prompters.partial_ot import partial_ot
from nucseg.models.prompters.prototypes import cosine_cost

INF = float('inf')


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Time partial_ot against POT on the same problems.')
    parser.add_argument('--n', type=int, default=62500, help='features N')
    parser.add_argument('--m', type=int, default=6, help='prototypes M')
    parser.add_argument('--dim', type=int, default=64, help='feature dim')
    parser.add_argument('--rho', type=float, default=0.6)
    parser.add_argument('--eps', type=float, default=0.1)
    parser.add_argument('--lambd', type=float, default=1.0)
    parser.add_argument('--tol', type=float, default=1e-6)
    parser.add_argument('--max-iter', type=int, default=1000)
    parser.add_argument(
        '--fixed-iters',
        action='store_true',
        help='tolerance 0 for every solver (POT runs to --max-iter)')
    parser.add_argument(
        '--repeat', type=int, default=1, help='timed runs (best kept)')
    parser.add_argument('--threads', type=int, default=None)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--out', default=None, help='optional JSON file')
    return parser.parse_args()


def make_cost(n: int, m: int, dim: int, seed: int) -> torch.Tensor:
    """Cosine cost of clustered random features to ``m`` prototypes."""
    g = torch.Generator().manual_seed(seed)
    protos = torch.randn(m, dim, generator=g, dtype=torch.float64)
    labels = torch.randint(m, (n, ), generator=g)
    feats = protos[labels] + 1.5 * torch.randn(
        n, dim, generator=g, dtype=torch.float64)
    return cosine_cost(feats, protos)


def best_time(fn: Callable[[], Tuple[np.ndarray, int]],
              repeat: int) -> Tuple[float, np.ndarray, int]:
    """Smallest wall time of ``repeat`` calls, the plan and iterations."""
    times = []
    for _ in range(max(repeat, 1)):
        start = time.perf_counter()
        plan, iters = fn()
        times.append(time.perf_counter() - start)
    return min(times), plan, iters


def main() -> int:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    tol = 0.0 if args.fixed_iters else args.tol
    cost = make_cost(args.n, args.m, args.dim, args.seed)
    n, m, rho, eps, lambd = args.n, args.m, args.rho, args.eps, args.lambd
    c_ext = np.concatenate([cost.numpy(), np.zeros((n, 1))], axis=1)
    a = np.full(n, 1.0 / n)
    b = np.array([rho / m] * m + [1 - rho])
    cap = args.max_iter

    def ours(dtype: torch.dtype, **kw) -> Callable:

        def run():
            plan, info = partial_ot(
                cost.to(dtype), rho, eps=eps, max_iter=cap, tol=tol,
                return_info=True, **kw)
            return plan.double().numpy(), info.n_iter

        return run

    def pot_sinkhorn(method: str, torch_dtype=None) -> Callable:

        def run():
            if torch_dtype is None:
                args_ = (a, b, c_ext)
            else:
                args_ = tuple(
                    torch.as_tensor(x, dtype=torch_dtype)
                    for x in (a, b, c_ext))
            plan, log = ot.sinkhorn(
                *args_, reg=eps, method=method, numItermax=cap,
                stopThr=tol, log=True, warn=False)
            plan = np.asarray(plan, dtype=np.float64)
            return plan[:, :m], int(log['niter']) + 1

        return run

    def pot_semi_relaxed() -> Callable:

        def run():
            plan, log = ot.unbalanced.sinkhorn_unbalanced(
                a, b, c_ext, reg=eps, reg_m=(INF, lambd),
                reg_type='entropy', method='sinkhorn', numItermax=cap,
                stopThr=tol, log=True)
            return plan[:, :m], len(log['err'])

        return run

    groups: List[Tuple[str, List[Tuple[str, Callable]]]] = [
        ('balanced', [
            ('pot sinkhorn f64 (numpy)', pot_sinkhorn('sinkhorn')),
            ('pot sinkhorn_log f64 (numpy)', pot_sinkhorn('sinkhorn_log')),
            ('pot sinkhorn_log f32 (torch)',
             pot_sinkhorn('sinkhorn_log', torch.float32)),
            ('ours f64', ours(torch.float64, lambd=INF)),
            ('ours f32', ours(torch.float32, lambd=INF)),
        ]),
        ('eq12', [
            ('pot sinkhorn_unbalanced f64', pot_semi_relaxed()),
            ('ours f64', ours(torch.float64, lambd=lambd,
                              slack_weight=lambd)),
            ('ours f32', ours(torch.float32, lambd=lambd,
                              slack_weight=lambd)),
        ]),
        ('partial', [
            ('ours f64', ours(torch.float64, lambd=lambd)),
            ('ours f32', ours(torch.float32, lambd=lambd)),
        ]),
    ]

    print(f'cost {n}x{m} (+ slack column), rho={rho}, eps={eps}, '
          f'lambd={lambd}, tol={tol}, max_iter={cap}, '
          f'torch threads={torch.get_num_threads()}')
    header = (f'{"problem":<9} {"solver":<30} {"seconds":>9} {"iters":>6} '
              f'{"ms/iter":>8} {"ratio":>7} {"max|dT|":>10} '
              f'{"|sum-rho|":>10}')
    print(header)
    print('-' * len(header))
    rows: List[Dict] = []
    for problem, solvers in groups:
        base_s = base_plan = None
        for name, fn in solvers:
            with warnings.catch_warnings():
                warnings.simplefilter('ignore')
                seconds, plan, iters = best_time(fn, args.repeat)
            if base_plan is None:
                base_s, base_plan = seconds, plan
            row = dict(
                problem=problem,
                solver=name,
                seconds=seconds,
                iters=iters,
                ms_per_iter=1e3 * seconds / max(iters, 1),
                ratio=seconds / base_s,
                max_abs_diff=float(np.abs(plan - base_plan).max()),
                mass_error=abs(float(plan.sum()) - rho))
            rows.append(row)
            print(f'{problem:<9} {name:<30} {seconds:>9.3f} {iters:>6d} '
                  f'{row["ms_per_iter"]:>8.2f} {row["ratio"]:>7.2f} '
                  f'{row["max_abs_diff"]:>10.2e} {row["mass_error"]:>10.2e}')
    print('ratio: seconds / first solver of the problem; max|dT|: largest '
          'plan entry difference to it (plan entries are ~1/(N M) = '
          f'{1.0 / (n * m):.1e}).')
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(
                dict(config=vars(args), tol_used=tol, rows=rows), f,
                indent=2)
        print(f'wrote {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
