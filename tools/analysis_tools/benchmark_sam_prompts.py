"""Benchmark SPROUT's SAM mask stage against the naive per-point loop.

On one seeded synthetic H&E patch (``--patch`` px, ``--num-points``
positive points at nucleus centroids, negative points on a 24-px grid of
the background, each positive with its 2 nearest negatives) this script
times, on the same SAM model (random weights: the architecture, not the
weights, sets the cost; random masks are large, so the windowed
upsampling saves less than with real nuclei masks):

* the naive loop of the official code: ``SamPredictor.set_image(patch)``
  then one ``SamPredictor.predict`` per prompt;
* :class:`SAMPointMaskGenerator.predict_prompts` on the same embedding
  with each decoder (``'sam'``: SAM's ``MaskDecoder`` per batch,
  ``'exact'``: prompt-independent work shared, ``'fast'``: also GEMM
  upscaling) and batch size, masks upsampled in windows (and once with
  SAM's full-size upsampling).

All variants are timed in turns, ``--repeat`` times, keeping the best, so
that a changing machine load affects them alike. It prints seconds per
100 prompts of the prompt stage (embedding excluded), the end-to-end time
of the patch (embedding + prompts) of the naive loop and of the
generator's defaults, and the number of mask pixels that differ from the
naive loop (0: identical masks). It exits with 1 if a batch-of-one
``'sam'`` or ``'exact'`` run is not identical to the naive loop.

Example::

    python tools/analysis_tools/benchmark_sam_prompts.py --archs vit_b tiny \
        --num-points 40 --batch-sizes 1 4 8 16 32 --repeat 3 --threads 2
"""
import argparse
import copy
import sys
import time
from typing import List, Tuple

import numpy as np
import torch
from scipy import ndimage as ndi
from segment_anything import SamPredictor, build_sam_vit_b

from nucseg.datasets.synthetic import generate_sample
from nucseg.models.mask_generators.sam_point_masks import \
    SAMPointMaskGenerator
from nucseg.models.layers.sam_attention import set_attn_impl
from nucseg.models.utils.sam import build_sam


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Time the batched SAM mask stage against the naive '
        'per-point SamPredictor loop.')
    parser.add_argument(
        '--archs', nargs='+', default=['vit_b', 'tiny'],
        help='SAM variants (vit_b: segment_anything.build_sam_vit_b; '
        'others: nucseg build_sam)')
    parser.add_argument('--patch', type=int, default=512, help='patch side')
    parser.add_argument(
        '--attn-impl', default='sdpa', choices=['sdpa', 'sdpa_fold'],
        help="generator's encoder attention in the end-to-end comparison")
    parser.add_argument(
        '--num-points', type=int, default=40, help='positive prompts')
    parser.add_argument(
        '--batch-sizes', type=int, nargs='+', default=[1, 4, 8, 16, 32],
        help='points_per_batch values to time')
    parser.add_argument(
        '--repeat', type=int, default=1, help='timed runs (best is kept)')
    parser.add_argument(
        '--threads', type=int, default=0,
        help='torch threads (0: leave the default)')
    parser.add_argument('--seed', type=int, default=0, help='random seed')
    return parser.parse_args()


def make_patch(size: int, num_points: int,
               seed: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Synthetic H&E patch, positive centroids and background grid points."""
    image, label = generate_sample('he_kumar', size, seed)
    ids = np.arange(1, label.max() + 1)
    cent = np.array(ndi.center_of_mass(label > 0, label, ids))[:, ::-1]
    cent = cent[np.isfinite(cent).all(1)]
    rng = np.random.default_rng(seed)
    if len(cent) < num_points:  # reuse centroids, slightly moved
        extra = cent[rng.integers(0, len(cent), num_points - len(cent))]
        cent = np.concatenate([cent, extra + rng.uniform(-2, 2, extra.shape)])
    pos = np.clip(cent[:num_points], 0, size - 1)
    yy, xx = np.mgrid[12:size:24, 12:size:24]
    grid = np.stack([xx.ravel(), yy.ravel()], 1)
    neg = grid[label[grid[:, 1], grid[:, 0]] == 0].astype(np.float64)
    return image, pos, neg


def naive_loop(predictor: SamPredictor, image: np.ndarray,
               coords: np.ndarray, labels: np.ndarray
               ) -> Tuple[float, float, List[np.ndarray]]:
    """``set_image`` + one ``predict`` per prompt; times and masks."""
    t0 = time.perf_counter()
    predictor.set_image(image)
    t1 = time.perf_counter()
    masks = []
    for c, lab in zip(coords, labels):
        m, _, _ = predictor.predict(c, lab, multimask_output=False)
        masks.append(m[0])
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1, masks


def diff_pixels(cands, masks: List[np.ndarray]) -> int:
    return int(sum((cands.mask(k) != m).sum() for k, m in enumerate(masks)))


def run_arch(arch: str, args: argparse.Namespace, image: np.ndarray,
             pos: np.ndarray, neg: np.ndarray) -> bool:
    torch.manual_seed(args.seed)
    sam = build_sam_vit_b() if arch == 'vit_b' else build_sam(arch)
    sam = sam.eval()
    gen = SAMPointMaskGenerator(
        sam=sam, patch_size=args.patch, merge_iou=None, border_margin=None,
        max_neg_inside=None)
    default_bs = gen.points_per_batch
    coords, labels = gen.build_prompts(pos, neg)
    n = len(coords)
    per100 = 100.0 / n
    predictor = SamPredictor(sam)
    emb = gen.embed(image)

    # (label, decoder, batch, exact_upsample); timed in turns, best kept.
    variants = [('naive SamPredictor.predict loop', None, 1, False)]
    variants += [(f"decoder 'sam', batch {bs}", 'sam', bs, False)
                 for bs in args.batch_sizes]
    variants += [("decoder 'exact', batch 1", 'exact', 1, False),
                 ("decoder 'exact', batch 1, full upsample", 'exact', 1,
                  True)]
    variants += [(f"decoder 'fast', batch {bs}", 'fast', bs, False)
                 for bs in args.batch_sizes]
    best = {v[0]: np.inf for v in variants}
    diffs, masks, embed_s = {}, None, np.inf
    for _ in range(max(args.repeat, 1)):
        for label, decoder, bs, full in variants:
            if decoder is None:
                e, t, masks = naive_loop(predictor, image, coords, labels)
                embed_s = min(embed_s, e)
                best[label] = min(best[label], t)
                continue
            gen.decoder, gen.points_per_batch = decoder, bs
            gen.exact_upsample = full
            t0 = time.perf_counter()
            cands = gen.predict_prompts(emb, coords, labels)
            best[label] = min(best[label], time.perf_counter() - t0)
            diffs[label] = diff_pixels(cands, masks)
    areas = np.array([m.sum() for m in masks])
    naive_t = best[variants[0][0]]
    print(f'\n[{arch}] {n} prompts of {coords.shape[1]} points on a '
          f'{args.patch} px patch; mask area mean {areas.mean():.0f} px '
          f'(min {areas.min()}, max {areas.max()}); embedding '
          f'{embed_s:.3f} s')
    print(f'  {"prompt stage (embedding excluded)":<42}{"s/100 prompts":>14}'
          f'{"speed-up":>10}{"diff px":>9}')
    for label, *_ in variants:
        print(f'  {label:<42}{best[label] * per100:>14.3f}'
              f'{naive_t / best[label]:>10.2f}{diffs.get(label, 0):>9d}')
    ok = all(diffs[v[0]] == 0 for v in variants
             if v[1] in ('sam', 'exact') and v[2] == 1)

    # End to end: embedding + prompts, naive loop vs generator defaults,
    # with SAM's own attention in the encoder and with the default one
    # (a copy of the same weights; the naive loop keeps SAM's code).
    gen.decoder, gen.points_per_batch = 'fast', default_bs
    gen.exact_upsample = False
    fast_sam = copy.deepcopy(sam)
    set_attn_impl(fast_sam.image_encoder, args.attn_impl)
    gen_fast = SAMPointMaskGenerator(
        sam=fast_sam, patch_size=args.patch, merge_iou=None,
        border_margin=None, max_neg_inside=None)
    t_naive, t_ours = np.inf, {'native': np.inf, args.attn_impl: np.inf}
    out = {}
    for _ in range(max(args.repeat, 1)):
        e, t, _ = naive_loop(predictor, image, coords, labels)
        t_naive = min(t_naive, e + t)
        for key, g in (('native', gen), (args.attn_impl, gen_fast)):
            t0 = time.perf_counter()
            out[key] = g.predict_prompts(g.embed(image), coords, labels)
            t_ours[key] = min(t_ours[key], time.perf_counter() - t0)
    for key, t in t_ours.items():
        print(f'  end to end (embedding + {n} prompts): naive '
              f"{t_naive:.3f} s, generator (decoder 'fast', batch "
              f'{default_bs}, {key} attention) {t:.3f} s, speed-up '
              f'{t_naive / t:.2f}x, differing pixels '
              f'{diff_pixels(out[key], masks)} of {int(areas.sum())}')
    return ok


def main() -> int:
    args = parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    print(f'torch {torch.__version__}, {torch.get_num_threads()} threads, '
          f'device cpu')
    image, pos, neg = make_patch(args.patch, args.num_points, args.seed)
    print(f'patch {args.patch}x{args.patch}: {len(pos)} positive, '
          f'{len(neg)} negative points')
    ok = True
    for arch in args.archs:
        ok &= run_arch(arch, args, image, pos, neg)
    if not ok:
        print("ERROR: 'sam'/'exact' masks of batch 1 differ from the naive "
              'loop')
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
