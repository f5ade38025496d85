"""Source-only vs. self-ensembling UDA on two synthetic H&E domains (CPU).

Trains the CPU synthetic config twice in one run with the same seed and the
same batches: once as the source-only baseline (``model.source_only=True``:
Dice + entropy + self-ensembling on the source, no target image used) and
once adapted (the full method), then tests both on the *target* test split
with and without the dense CRF. Prints a table (IoU, Dice, AJI, PQ, seconds
per training iteration) and writes it to ``<work-dir>/results.json``, with
a diagnostic of each model's target predictions under BatchNorm's running
statistics vs. the target test split's own statistics.

The synthetic data are written first when missing (``make_dataset``, 64
images of 256 px per domain, seed 0).

Example::

    python tools/analysis_tools/selfens_uda_synthetic.py \\
        --source he_kumar --target he_cryo --iters 300 --seed 0
"""
import argparse
import json
import os
import os.path as osp
import sys
import time

import numpy as np
from mmengine.config import DictAction

CONFIG = ('configs/selfens_uda/'
          'selfens-uda_unet-c16_1xb1+1-300it_synth-kumar-to-cryo-128.py')
METRICS = ('iou', 'dice', 'aji', 'pq')


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Source-only vs. adapted self-ensembling UDA on '
        'synthetic H&E domains')
    parser.add_argument('--config', default=CONFIG, help='CPU config')
    parser.add_argument('--source', default='he_kumar',
                        help='labelled source domain')
    parser.add_argument('--target', default='he_cryo',
                        help='unlabelled target domain')
    parser.add_argument('--data-root', default='data/synthetic',
                        help='folder of the synthetic domains')
    parser.add_argument('--num', type=int, default=64,
                        help='images per domain when generating')
    parser.add_argument('--size', type=int, default=256,
                        help='image side when generating')
    parser.add_argument('--iters', type=int, default=300,
                        help='training iterations of each model')
    parser.add_argument('--seed', type=int, default=0, help='random seed')
    parser.add_argument('--work-dir', default='work_dirs/selfens_uda_synth',
                        help='output folder')
    parser.add_argument('--variants', nargs='+',
                        default=['source_only', 'adapted'],
                        choices=['source_only', 'adapted'],
                        help='models to train')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='config overrides applied to every variant')
    parser.add_argument('--threads', type=int, default=1,
                        help='torch intra-op threads (1: small convs run '
                        'fastest single-threaded on a shared CPU)')
    return parser.parse_args(argv)


def ensure_domain(root: str, domain: str, num: int, size: int) -> str:
    """``root/domain`` with a synthetic data set (written if missing)."""
    from nucseg.datasets.synthetic import make_dataset
    out = osp.join(root, domain)
    if not osp.isfile(osp.join(out, 'splits', 'test.txt')):
        make_dataset(out, domain=domain, num=num, size=size, seed=0)
    return out


def build_cfg(args, variant: str, source: str, target: str):
    from mmengine.config import Config
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    cfg.work_dir = osp.join(args.work_dir, variant)
    cfg.experiment_name = variant
    cfg.randomness = dict(seed=args.seed)
    cfg.model.source_only = variant == 'source_only'
    datasets = cfg.train_dataloader.dataset.datasets
    datasets[0].data_root, datasets[1].data_root = source, target
    for key in ('val_dataloader', 'test_dataloader'):
        cfg[key].dataset.data_root = target
        cfg[key].num_workers = 0
        cfg[key].persistent_workers = False
    cfg.train_dataloader.num_workers = 0
    cfg.train_dataloader.persistent_workers = False
    cfg.train_cfg.max_iters = args.iters
    cfg.train_cfg.val_interval = args.iters + 1  # test at the end only
    cfg.default_hooks.checkpoint.interval = args.iters
    cfg.default_hooks.checkpoint.save_best = None
    cfg.default_hooks.pop('visualization', None)
    cfg.custom_hooks = [
        h for h in cfg.custom_hooks if h['type'] != 'InstanceOverlayHook'
    ]
    cfg.env_cfg.dist_cfg = dict(backend='gloo')
    return cfg


def run_variant(args, variant: str, source: str, target: str) -> dict:
    """Train one variant, return its timing and target test metrics."""
    from mmengine.runner import Runner
    cfg = build_cfg(args, variant, source, target)
    runner = Runner.from_cfg(cfg)
    start = time.perf_counter()
    runner.train()
    wall = time.perf_counter() - start
    times = np.asarray(runner.message_hub.get_scalar('train/time').data[0])
    # IterTimerHook's per-iteration times; the first holds warm-up.
    per_iter = float(times[1:].mean()) if times.size > 1 else wall
    result = dict(sec_per_iter=per_iter, train_wall_sec=wall)
    with_crf = runner.test()
    model = runner.model.module if hasattr(runner.model,
                                           'module') else runner.model
    crf, model.crf = model.crf, None
    without_crf = runner.test()
    model.crf = crf
    result['crf'] = {k: float(with_crf[k]) for k in METRICS}
    result['no_crf'] = {k: float(without_crf[k]) for k in METRICS}
    result['bn_diagnostic'] = bn_diagnostic(model, target)
    return result


def bn_diagnostic(model, target: str) -> dict:
    """Target test predictions (no CRF) with BatchNorm's running
    statistics (``eval``, what the model uses) and with the test split's
    own batch statistics (``batch``, AdaBN-style; a diagnostic only).

    Args:
        model (SelfEnsemblingUDA): The trained model (unwrapped); its
            running statistics are left as they were.
        target (str): Root of the target domain (``splits/test.txt``,
            ``images/``, ``labels/``; images of one size).

    Returns:
        dict: Per mode (``eval``, ``batch``) the mean probability, the
        fraction of pixels above 0.5 and the pixel Dice over the whole
        split; ``gt_fraction`` is the nuclei fraction.
    """
    import torch

    from nucseg.utils.io import read_image, read_label
    with open(osp.join(target, 'splits', 'test.txt')) as f:
        names = f.read().split()
    images = np.stack([read_image(osp.join(target, 'images', n + '.png'))
                       for n in names])
    gt = np.stack([read_label(osp.join(target, 'labels', n + '.png')) > 0
                   for n in names])
    pre = model.data_preprocessor
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float()
    x = (x - pre.mean.view(1, 3, 1, 1)) / pre.std.view(1, 3, 1, 1)
    segmenter = model.segmenter
    training = segmenter.training
    out = dict(gt_fraction=float(gt.mean()))
    for mode in ('eval', 'batch'):
        segmenter.train(mode == 'batch')
        state = {k: v.clone() for k, v in segmenter.state_dict().items()}
        with torch.no_grad():
            prob = segmenter(x).sigmoid()[:, 0].numpy()
        segmenter.load_state_dict(state)  # undo the running-stat update
        fg = prob > 0.5
        dice = 2 * (fg & gt).sum() / max(fg.sum() + gt.sum(), 1)
        out[mode] = dict(mean_prob=float(prob.mean()),
                         above_half=float(fg.mean()), dice=float(dice))
    segmenter.train(training)
    return out


def table(results: dict) -> str:
    lines = ['| model | CRF | IoU | Dice | AJI | PQ | s / iter |',
             '|---|---|---|---|---|---|---|']
    for variant, res in results.items():
        for key, name in (('crf', 'yes'), ('no_crf', 'no')):
            m = res[key]
            lines.append(f'| {variant} | {name} | {m["iou"]:.4f} | '
                         f'{m["dice"]:.4f} | {m["aji"]:.4f} | '
                         f'{m["pq"]:.4f} | {res["sec_per_iter"]:.3f} |')
    return '\n'.join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    from nucseg.utils import register_all_modules
    if args.threads:
        torch.set_num_threads(args.threads)
    register_all_modules(init_default_scope=False)
    source = ensure_domain(args.data_root, args.source, args.num, args.size)
    target = ensure_domain(args.data_root, args.target, args.num, args.size)
    results = {}
    for variant in args.variants:
        results[variant] = run_variant(args, variant, source, target)
    summary = dict(
        config=args.config, source=args.source, target=args.target,
        iters=args.iters, seed=args.seed,
        cfg_options=args.cfg_options or {},
        threads=torch.get_num_threads(), results=results)
    os.makedirs(args.work_dir, exist_ok=True)
    with open(osp.join(args.work_dir, 'results.json'), 'w') as f:
        json.dump(summary, f, indent=2)
    print(f'\n{args.source} -> {args.target}, {args.iters} iterations, '
          f'seed {args.seed}, target test split:')
    print(table(results))
    print('target test split without CRF, BatchNorm running statistics '
          '(eval) vs the split\'s own statistics (batch; diagnostic):')
    for variant, res in results.items():
        diag = res['bn_diagnostic']
        print(f'  {variant}: ' + ', '.join(
            f'{mode}: mean p {diag[mode]["mean_prob"]:.3f}, '
            f'{100 * diag[mode]["above_half"]:.1f} % > 0.5, '
            f'Dice {diag[mode]["dice"]:.3f}' for mode in ('eval', 'batch'))
            + f' (nuclei {100 * diag["gt_fraction"]:.1f} %)')
    if len(results) == 2:
        gain = (results['adapted']['crf']['dice'] -
                results['source_only']['crf']['dice'])
        print(f'adapted - source-only Dice (with CRF): {gain:+.4f}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
