"""End-to-end demo on synthetic data (``make demo``).

1. synthesise a small H&E nuclei data set (``data/synthetic/he_kumar``);
2. train the U-Net contour baseline for a few hundred CPU iterations;
3. evaluate the best checkpoint on the held-out test split, writing
   ``metrics.json``, overlay panels and predicted instance maps;
4. run the training-free SPROUT (weight-free mode, nothing downloaded) on
   the same test split, with the same outputs under ``sprout/``;
5. segment a larger synthetic field (1024 x 1024, nominally 0.5 um/px)
   with ``tools/infer.py`` -- tiled inference with instance stitching at
   each model's pixel size -- with the trained U-Net and SPROUT's slide
   preset, writing label maps, QuPath GeoJSON, per-nucleus CSV and
   overlays under ``field/``, and score both against the field's labels.

Everything lands in ``--work-dir`` (default ``work_dirs/demo``)::

    work_dirs/demo/
        best_aji_iter_*.pth, iter_*.pth   checkpoints
        test/metrics.json                 AJI, AJI+, DQ, SQ, PQ, Dice, ...
        test/<timestamp>/overlays/*.png   image | GT | prediction panels
        test/pred_instance_maps/*.png     uint16 instance maps
        sprout/metrics.json, sprout/<timestamp>/overlays/*.png,
        sprout/pred_instance_maps/*.png   the same for SPROUT
        field/field.png, field/{unet,sprout}/field{.png,.geojson,.csv,
        _overlay.png}                     tiled inference on a 1024 px field
"""
import argparse
import glob
import json
import os.path as osp
import subprocess
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(ROOT, 'configs', 'unet',
                  'unet-s5-c16_contour_1xb4-300it_synth-he-256x256.py')
SPROUT_CONFIG = osp.join(ROOT, 'configs', 'sprout', 'sprout_weightfree.py')
SLIDE_CONFIG = osp.join(ROOT, 'configs', 'sprout',
                        'sprout_weightfree_slide.py')


def run(cmd: list) -> None:
    print('+', ' '.join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument('--data-root', default='data/synthetic/he_kumar')
    parser.add_argument('--num', type=int, default=64)
    parser.add_argument('--iters', type=int, default=300)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()

    py = sys.executable
    t0 = time.time()
    if not osp.isfile(osp.join(ROOT, args.data_root, 'splits', 'test.txt')):
        run([
            py, 'tools/misc/make_synthetic.py', '--out', args.data_root,
            '--domain', 'he_kumar', '--num',
            str(args.num), '--size', '256', '--seed',
            str(args.seed)
        ])
    data_opts = [
        f'{k}.dataset.data_root={args.data_root}'
        for k in ('train_dataloader', 'val_dataloader', 'test_dataloader')
    ]
    run([
        py, 'tools/train.py', CONFIG, '--work-dir', args.work_dir,
        '--cfg-options', f'train_cfg.max_iters={args.iters}',
        f'train_cfg.val_interval={max(args.iters // 3, 1)}',
        f'default_hooks.checkpoint.interval={max(args.iters // 3, 1)}',
        f'randomness.seed={args.seed}', *data_opts
    ])
    best = sorted(glob.glob(osp.join(ROOT, args.work_dir, 'best_*.pth')))
    ckpt = best[-1] if best else osp.join(ROOT, args.work_dir,
                                          f'iter_{args.iters}.pth')
    test_dir = osp.join(args.work_dir, 'test')
    run([
        py, 'tools/test.py', CONFIG, ckpt, '--work-dir', test_dir,
        '--show-dir', 'overlays', '--out',
        # absolute: a relative --out would land under <timestamp>/
        osp.join(ROOT, test_dir, 'pred_instance_maps'), '--cfg-options',
        *data_opts
    ])
    with open(osp.join(ROOT, test_dir, 'metrics.json')) as f:
        metrics = json.load(f)

    # 4. Training-free SPROUT (weight-free mode) on the same test split.
    # Its pixel sizes are for 40x H&E; the synthetic tiles are upsampled
    # 2x so that their nuclei have that size.
    sprout_dir = osp.join(args.work_dir, 'sprout')
    run([
        py, 'tools/test.py', SPROUT_CONFIG, '--work-dir', sprout_dir,
        '--show-dir', 'overlays', '--out',
        osp.join(ROOT, sprout_dir, 'pred_instance_maps'), '--cfg-options',
        f'test_dataloader.dataset.data_root={args.data_root}',
        'test_dataloader.dataset.pipeline.1.scale=(512,512)'
    ])
    with open(osp.join(ROOT, sprout_dir, 'metrics.json')) as f:
        sprout_metrics = json.load(f)

    # 5. Tiled inference (tools/infer.py) on a larger field: the synthetic
    # tiles stand for 0.5 um/px; each model is run at its own pixel size
    # (SPROUT's is 0.25: the field is read at 2x) and stitched.
    from nucseg.datasets.synthetic import generate_sample
    from nucseg.evaluation.functional import instance_metrics
    from nucseg.utils.io import read_label, write_image
    field_dir = osp.join(ROOT, args.work_dir, 'field')
    img, gt = generate_sample('he_kumar', 1024, args.seed + 1000)
    write_image(osp.join(field_dir, 'field.png'), img)
    field_scores = {}
    for key, config, extra in (('unet', CONFIG, ['--checkpoint', ckpt]),
                               ('sprout', SLIDE_CONFIG, [])):
        out = osp.join(field_dir, key)
        run([py, 'tools/infer.py', config,
             osp.join(field_dir, 'field.png'), '--out', out, '--mpp', '0.5',
             '--format', 'geojson', 'csv', 'labels', 'overlay', *extra])
        pred = read_label(osp.join(out, 'field.png'))
        m = instance_metrics(gt, pred)
        field_scores[key] = {k: round(m[k], 3) for k in ('aji', 'pq')}

    print('\nDemo finished in %.1f min' % ((time.time() - t0) / 60))
    print('checkpoint:', osp.relpath(ckpt, ROOT))
    print('U-Net test metrics:', json.dumps(metrics, indent=2))
    print('SPROUT (weight-free, training-free) test metrics:',
          json.dumps(sprout_metrics, indent=2))
    print('tiled inference on the 1024 px field (field/):',
          json.dumps(field_scores))
    for d in (test_dir, sprout_dir):
        overlays = glob.glob(osp.join(ROOT, d, '*', 'overlays', '*.png'))
        print(f'{len(overlays)} overlay panels under {d}/*/overlays/')


if __name__ == '__main__':
    main()
