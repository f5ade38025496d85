"""Memory and speed of tiled inference (issue 13), all in one run.

1. Memory flat in image size: synthetic H&E tiled TIFFs of ``--sizes``
   (default 2048^2 and 8192^2, written block by block) are segmented by
   ``tools/infer.py``'s inferencer with the weight-free SPROUT slide preset
   and the demo U-Net (random weights: speed and memory do not depend on
   them), writing labels, GeoJSON and CSV. Each run is a fresh process:
   peak RSS (``ru_maxrss``), RSS after the model is built, wall time and
   seconds per megapixel; ratios largest / smallest size.
2. Seconds per megapixel of the full weight-free recipe, the slide preset
   and the classical H-Otsu + watershed baseline on the smallest image.
3. With ``--monuseg DIR`` (images/ and labels/ of converted MoNuSeg): mean
   AJI / PQ and s/Mpx of the three on those images (tiled inference at
   0.25 um/px).

Example::

    python tools/analysis_tools/benchmark_tiled_inference.py \
        --monuseg data/monuseg --threads 2
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
FULL = 'configs/sprout/sprout_weightfree.py'
SLIDE = 'configs/sprout/sprout_weightfree_slide.py'
BASELINE = 'configs/classical/h-otsu-watershed_monuseg.py'
UNET = 'configs/unet/unet-s5-c16_contour_1xb4-300it_synth-he-256x256.py'


def rss_mb() -> float:
    """Current resident set size (MB), from /proc."""
    with open('/proc/self/statm') as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf('SC_PAGE_SIZE') / 2**20


def write_synthetic_tiff(path: Path, size: int, mpp: float,
                         block: int = 1024) -> None:
    """A ``size x size`` tiled TIFF of synthetic H&E, block by block (8
    distinct 1024 px samples repeated; memory of one block row)."""
    import tifffile

    from nucseg.datasets.synthetic import generate_sample
    samples = [generate_sample('he_kumar', block, s)[0] for s in range(8)]
    tile = 256

    def tiles():
        for by in range(0, size, tile):
            for bx in range(0, size, tile):
                k = ((by // block) * 7 + bx // block) % len(samples)
                y, x = by % block, bx % block
                yield samples[k][y:y + tile, x:x + tile]

    tifffile.imwrite(path, tiles(), shape=(size, size, 3), dtype='uint8',
                     tile=(tile, tile), photometric='rgb',
                     compression='zlib',
                     resolution=(1e4 / mpp, 1e4 / mpp),
                     resolutionunit='CENTIMETER')


def worker(args) -> int:
    """One measured run (a fresh process): prints a JSON line."""
    import torch
    torch.set_num_threads(args.threads)
    from nucseg.apis import init_model
    from nucseg.apis.exports import LabelMapWriter, NucleiExporter
    from nucseg.apis.tiled_inference import TiledInferencer
    from nucseg.utils.slide import open_image_source
    torch.manual_seed(0)  # the same random weights in every process
    model = init_model(args.worker[0], device='cpu',
                       allow_random_weights=True)
    inferencer = TiledInferencer(model)
    out = Path(args.worker[2])
    out.mkdir(parents=True, exist_ok=True)
    stem = out / Path(args.worker[1]).stem
    sinks = [LabelMapWriter(stem), NucleiExporter(
        stem.with_suffix('.geojson'), stem.with_suffix('.csv'))]
    source = open_image_source(args.worker[1],
                               mpp=inferencer.settings['mpp'])
    loaded = rss_mb()
    t0 = time.perf_counter()
    result = inferencer.run(source, sinks)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    w, h = source.dimensions
    print(json.dumps(dict(
        config=args.worker[0], image=args.worker[1], mpx=w * h / 1e6,
        seconds=seconds, s_per_mpx=seconds / (w * h / 1e6),
        rss_loaded_mb=loaded, peak_rss_mb=peak,
        instances=result.num_instances, tiles=result.tiles,
        labels=str(sinks[0].path))))
    return 0


def run_worker(config, image, out, threads) -> dict:
    cmd = [sys.executable, __file__, '--threads', str(threads), '--worker',
           config, str(image), str(out)]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True,
                          text=True)
    if proc.returncode != 0:
        raise RuntimeError(f'{config} on {image} failed:\n'
                           f'{proc.stderr[-3000:]}')
    return json.loads(proc.stdout.strip().splitlines()[-1])


def monuseg(args) -> list:
    import torch
    torch.set_num_threads(args.threads)
    from nucseg.apis import init_model, list_images
    from nucseg.apis.tiled_inference import TiledInferencer, predict_image
    from nucseg.evaluation.functional import instance_metrics
    from nucseg.utils.io import read_image, read_label
    root = Path(args.monuseg)
    items = [(read_image(p), read_label(root / 'labels' / p.name))
             for p in list_images(root / 'images')]
    rows = []
    for config in (FULL, SLIDE, BASELINE):
        inferencer = TiledInferencer(init_model(config, device='cpu'))
        scores, secs, mpx = [], 0.0, 0.0
        for img, lab in items:
            t0 = time.perf_counter()
            inst = predict_image(inferencer, img, mpp=0.25)
            secs += time.perf_counter() - t0
            mpx += img.shape[0] * img.shape[1] / 1e6
            m = instance_metrics(lab, inst)
            scores.append((m['aji'], m['pq']))
        aji, pq = np.mean(scores, 0)
        rows.append(dict(config=config, aji=aji, pq=pq,
                         s_per_mpx=secs / mpx, images=len(items)))
        print(f'  MoNuSeg {config}: AJI {aji:.4f} PQ {pq:.4f} '
              f'{secs / mpx:.2f} s/Mpx', flush=True)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--sizes', type=int, nargs='+',
                        default=[2048, 8192])
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--monuseg', help='converted MoNuSeg folder')
    parser.add_argument('--work-dir', help='keep images and outputs here')
    parser.add_argument('--json', help='write all results here')
    parser.add_argument('--worker', nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    work = Path(args.work_dir or tempfile.mkdtemp(prefix='bench_tiled_'))
    work.mkdir(parents=True, exist_ok=True)
    print(f'load average {os.getloadavg()}, {args.threads} threads, '
          f'work dir {work}', flush=True)
    images = {}
    for size in args.sizes:
        images[size] = work / f'synthetic_{size}.tif'
        if not images[size].is_file():
            write_synthetic_tiff(images[size], size, mpp=0.25)
    results = dict(memory=[], presets=[], monuseg=[])
    print('\n1. memory and time vs image size (fresh process per run)')
    for config in (SLIDE, UNET):
        for size in args.sizes:
            r = run_worker(config, images[size], work / 'out', args.threads)
            results['memory'].append(r)
            print(f'  {Path(config).stem} {size}^2: {r["seconds"]:.1f} s '
                  f'({r["s_per_mpx"]:.2f} s/Mpx), peak RSS '
                  f'{r["peak_rss_mb"]:.0f} MB (after model build '
                  f'{r["rss_loaded_mb"]:.0f} MB), {r["instances"]} '
                  f'instances, {r["tiles"]} tiles', flush=True)
        small, large = results['memory'][-len(args.sizes)], \
            results['memory'][-1]
        print(f'  -> peak RSS ratio {large["peak_rss_mb"] / small["peak_rss_mb"]:.2f}'  # noqa: E501
              f', time ratio {large["seconds"] / small["seconds"]:.1f} for '
              f'{large["mpx"] / small["mpx"]:.0f}x the area', flush=True)
    print(f'\n2. s/Mpx on the {args.sizes[0]}^2 image')
    for config in (FULL, SLIDE, BASELINE):
        r = run_worker(config, images[args.sizes[0]], work / 'out',
                       args.threads)
        results['presets'].append(r)
        print(f'  {Path(config).stem}: {r["s_per_mpx"]:.2f} s/Mpx '
              f'({r["instances"]} instances)', flush=True)
    if args.monuseg:
        print('\n3. MoNuSeg images (tiled, 0.25 um/px)')
        results['monuseg'] = monuseg(args)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == '__main__':
    sys.exit(main())
