"""Time SPROUT's prior-side components on one synthetic H&E image.

Measures, on a seeded synthetic ``he_kumar`` tile of ``--size`` pixels:
stain priors (:func:`nucseg.utils.stain.stain_priors`), the weight-free
filter bank (:class:`FilterBankExtractor`, pyramid and full resolution)
against a scipy.ndimage implementation of the same responses (baseline
measured in the same run), the dense CRF with 2 labels at SPROUT's
parameters (fresh, and bound to the image for further maps) and the point
prompts. Prints the best wall time of
``--repeat`` runs per component and the filter bank's speed-up over scipy.

Example::

    python tools/analysis_tools/benchmark_sprout_priors.py --size 1000 \\
        --repeat 3 --threads 2
"""
import argparse
import time
from typing import Callable

import numpy as np
import torch
from scipy import ndimage as ndi

from nucseg.datasets.synthetic import generate_sample
from nucseg.models.extractors.filter_bank import FilterBankExtractor
from nucseg.models.layers.dense_crf import DenseCRF, dense_crf
from nucseg.models.prompters.point_prompts import (expanded_background,
                                                   nearest_negatives,
                                                   negative_points,
                                                   positive_points)
from nucseg.utils.stain import stain_concentrations, stain_priors


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Time stain priors, filter bank, dense CRF, prompts.')
    parser.add_argument('--size', type=int, default=1000)
    parser.add_argument('--repeat', type=int, default=3)
    parser.add_argument('--threads', type=int, default=None)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--skip-scipy', action='store_true',
                        help='skip the (slow) scipy baseline')
    return parser.parse_args()


def best(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(max(repeat, 1)):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def scipy_bank(img: np.ndarray, sigmas=(1.0, 2.0, 4.0, 8.0),
               stride: int = 4) -> np.ndarray:
    """The filter bank's responses with scipy.ndimage (baseline)."""
    conc = stain_concentrations(img)
    out = []
    for st in range(2):
        s = conc[..., st]
        out.append(s)
        for sig in sigmas:
            d = {o: ndi.gaussian_filter(s, sig, order=o)
                 for o in [(0, 0), (0, 1), (1, 0), (0, 2), (2, 0), (1, 1)]}
            gx, gy = sig * d[(0, 1)], sig * d[(1, 0)]
            a, b, c = (sig**2 * d[(0, 2)], sig**2 * d[(1, 1)],
                       sig**2 * d[(2, 0)])
            r = np.hypot((a - c) / 2, b)
            j = [ndi.gaussian_filter(p, 2 * sig)
                 for p in (gx * gx, gx * gy, gy * gy)]
            rj = np.hypot((j[0] - j[2]) / 2, j[1])
            out += [d[(0, 0)], a + c, np.hypot(gx, gy), (a + c) / 2 + r,
                    (a + c) / 2 - r, (j[0] + j[2]) / 2 + rj,
                    (j[0] + j[2]) / 2 - rj]
    feats = torch.from_numpy(np.stack(out))[None]
    return torch.nn.functional.avg_pool2d(feats, stride, ceil_mode=True)


def main() -> int:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    img, inst = generate_sample('he_kumar', args.size, args.seed)
    print(f'image {img.shape}, {inst.max()} nuclei, torch threads '
          f'{torch.get_num_threads()}')
    pri = stain_priors(img)
    t = best(lambda: stain_priors(img), args.repeat)
    print(f'stain_priors            {t:8.3f} s')

    x = torch.from_numpy(img.transpose(2, 0, 1).copy())[None].float()
    fast, exact = FilterBankExtractor(), FilterBankExtractor(pyramid=False)
    with torch.no_grad():
        t_fast = best(lambda: fast(x), args.repeat)
        t_exact = best(lambda: exact(x), args.repeat)
    print(f'filter bank (pyramid)   {t_fast:8.3f} s  '
          f'{fast.out_channels} channels')
    print(f'filter bank (full res)  {t_exact:8.3f} s')
    if not args.skip_scipy:
        t_ref = best(lambda: scipy_bank(img), 1)
        print(f'scipy.ndimage baseline  {t_ref:8.3f} s  '
              f'(speed-up {t_ref / t_fast:.1f}x pyramid, '
              f'{t_ref / t_exact:.1f}x full res)')

    p = np.clip((pri.h - pri.h.min()) / np.ptp(pri.h), 0.01, 0.99)
    probs = np.stack([1 - p, p]).astype(np.float32)
    t = best(lambda: dense_crf(img, probs), args.repeat)
    print(f'dense_crf (2 labels)    {t:8.3f} s')
    bound = DenseCRF().bind(img, 2)
    t = best(lambda: bound(probs), args.repeat)
    print(f'  same image, bound     {t:8.3f} s per further map')

    fg = inst > 0
    pos = positive_points([pri.fg_ref, fg])
    bg = expanded_background(fg)
    neg = negative_points(bg)

    def prompts():
        positive_points([pri.fg_ref, fg])
        negative_points(expanded_background(fg))
        nearest_negatives(pos, neg, 2)

    t = best(prompts, args.repeat)
    print(f'point prompts           {t:8.3f} s  ({len(pos)} positive, '
          f'{len(neg)} negative)')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
