"""Benchmark the vectorised instance metrics against the slow reference.

A seeded synthetic ground truth (random touching ellipses) and a perturbed
prediction are scored by :func:`nucseg.evaluation.functional.
instance_metrics` and by the per-instance reference implementation
(boolean-mask loops, HoVer-Net style) in the same run; the script checks
that both agree and prints the seconds per image of each and the speed-up.

Example::

    python tools/analysis_tools/benchmark_metrics.py --size 1000 \\
        --nuclei 700 --repeat 5 --seed 0
"""
import argparse
import sys
import time
from typing import Callable, Tuple

import numpy as np

from nucseg.evaluation.functional import instance_metrics
from nucseg.evaluation.functional.reference import (
    perturb_instance_map, random_instance_map, reference_instance_metrics)

KEYS = ('aji', 'aji_plus', 'dq', 'sq', 'pq', 'dice', 'obj_f1', 'tp', 'fp',
        'fn')


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Time instance_metrics against the slow reference.')
    parser.add_argument(
        '--size', type=int, default=1000, help='image side in pixels')
    parser.add_argument(
        '--nuclei', type=int, default=700, help='ellipses painted')
    parser.add_argument(
        '--repeat', type=int, default=5, help='timed runs of the fast code')
    parser.add_argument(
        '--ref-repeat',
        type=int,
        default=1,
        help='timed runs of the reference (it is slow)')
    parser.add_argument(
        '--match-iou', type=float, default=0.5, help='match threshold')
    parser.add_argument('--seed', type=int, default=0, help='random seed')
    parser.add_argument(
        '--atol', type=float, default=1e-9, help='agreement tolerance')
    return parser.parse_args()


def best_time(fn: Callable[[], dict], repeat: int) -> Tuple[float, dict]:
    """Smallest wall time of ``repeat`` calls and the last result."""
    times = []
    for _ in range(max(repeat, 1)):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def main() -> int:
    args = parse_args()
    rng = np.random.default_rng(args.seed)
    gt = random_instance_map((args.size, args.size), args.nuclei, rng)
    pred = perturb_instance_map(gt, rng)
    n_gt = len(np.unique(gt)) - 1
    n_pred = len(np.unique(pred)) - 1
    print(f'image {args.size}x{args.size}: {n_gt} gt instances, '
          f'{n_pred} predicted instances, match_iou={args.match_iou}')

    fast_s, fast = best_time(
        lambda: instance_metrics(gt, pred, args.match_iou), args.repeat)
    ref_s, ref = best_time(
        lambda: reference_instance_metrics(gt, pred, args.match_iou),
        args.ref_repeat)

    worst = max(abs(float(fast[k]) - float(ref[k])) for k in KEYS)
    print('metric       fast         reference')
    for k in KEYS:
        print(f'{k:<10} {float(fast[k]):>12.6f} {float(ref[k]):>12.6f}')
    print(f'max abs difference: {worst:.3g} '
          f'({"agree" if worst <= args.atol else "DISAGREE"})')
    print(f'instance_metrics:  {fast_s:.4f} s/image '
          f'(best of {args.repeat})')
    print(f'reference:         {ref_s:.4f} s/image '
          f'(best of {args.ref_repeat})')
    print(f'speed-up:          {ref_s / fast_s:.1f}x')
    return 0 if worst <= args.atol else 1


if __name__ == '__main__':
    sys.exit(main())
