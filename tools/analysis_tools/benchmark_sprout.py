"""Seconds per image of a SPROUT config, per stage, against a baseline.

Times ``SPROUT.segment`` of a config (default: the weight-free one) on
images of a folder (e.g. converted MoNuSeg ``data/monuseg/images``) or on
seeded synthetic H&E images of ``--size`` px, and, in the same run, the
classical baseline it should beat (H-channel Otsu + distance-transform
watershed). Prints seconds per image for every SPROUT stage (stain
priors, features, POT-Scan with its CRF steps, points, masks, NMS), the
total, the baseline and their ratio; with labels (``--labels``) also the
mean AJI / PQ of both. The config's own resizing is not applied: images
are segmented at their stored size.

Example::

    python tools/analysis_tools/benchmark_sprout.py --size 1000 --num 3
    python tools/analysis_tools/benchmark_sprout.py \
        --images data/monuseg/images --labels data/monuseg/labels
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from skimage.filters import threshold_otsu

from nucseg.apis import init_model, list_images
from nucseg.evaluation.functional import instance_metrics
from nucseg.models.postprocessors import DistanceWatershed
from nucseg.utils.io import read_image, read_label
from nucseg.utils.stain import rgb_to_hed


def baseline(img: np.ndarray) -> np.ndarray:
    """H-channel Otsu + distance-transform watershed."""
    h = rgb_to_hed(img)[..., 0]
    return DistanceWatershed(min_area=30, hole_area=40).split(
        h > threshold_otsu(h))


def samples(args):
    if args.images:
        for path in list_images(args.images):
            lab = Path(args.labels) / f'{path.stem}.png' if args.labels \
                else None
            yield path.stem, read_image(path), (
                read_label(lab) if lab is not None and lab.is_file() else
                None)
        return
    from nucseg.datasets.synthetic import generate_sample
    for i in range(args.num):
        img, lab = generate_sample('he_kumar', args.size, args.seed + i)[:2]
        yield f'synthetic_{i}', img, lab


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--config', default='configs/sprout/'
                        'sprout_weightfree.py')
    parser.add_argument('--images', help='folder of images')
    parser.add_argument('--labels', help='folder of label maps (optional)')
    parser.add_argument('--size', type=int, default=1000)
    parser.add_argument('--num', type=int, default=3)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--threads', type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    model = init_model(args.config, device='cpu')
    rows, base_t, scores = [], [], {'sprout': [], 'baseline': []}
    for name, img, lab in samples(args):
        t0 = time.perf_counter()
        inst = model.segment(img)
        total = time.perf_counter() - t0
        t0 = time.perf_counter()
        base = baseline(img)
        base_t.append(time.perf_counter() - t0)
        rows.append(dict(model.last_state['timings'], total=total))
        msg = f'{name} {img.shape[1]}x{img.shape[0]}: {total:.2f} s'
        if lab is not None:
            for key, pred in (('sprout', inst), ('baseline', base)):
                m = instance_metrics(lab, pred)
                scores[key].append((m['aji'], m['pq']))
            msg += (f"  AJI/PQ sprout {scores['sprout'][-1][0]:.3f}/"
                    f"{scores['sprout'][-1][1]:.3f} baseline "
                    f"{scores['baseline'][-1][0]:.3f}/"
                    f"{scores['baseline'][-1][1]:.3f}")
        print(msg, flush=True)
    print(f'\n{args.config}, torch threads {torch.get_num_threads()}, '
          f'{len(rows)} images; seconds per image (mean):')
    for stage in rows[0]:
        print(f'  {stage:<14}{np.mean([r.get(stage, 0) for r in rows]):8.2f}')
    total, base = np.mean([r['total'] for r in rows]), np.mean(base_t)
    print(f'  {"baseline":<14}{base:8.2f}   (SPROUT / baseline = '
          f'{total / base:.1f}x)')
    for key, vals in scores.items():
        if vals:
            aji, pq = np.mean(vals, 0)
            print(f'  {key}: AJI {aji:.3f}  PQ {pq:.3f}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
