"""Time and memory of PDAM training iterations with the real config.

Trains the real ``configs/cyc_pdam/pdam_r101-gn_...`` config (mmdet's
R-101-FPN-GN Mask R-CNN + Panoptic-FPN semantic branch + image, semantic
and instance discriminators) with ``tools/train.py`` for a few iterations
on 256 x 256 synthetic data (one source + one target image per
iteration) and, in the same run, the baseline: the same mmdet Mask R-CNN
(``MaskRCNN``: same backbone, neck and heads) without the
domain-adaptation parts, trained on the source image alone (batch 1),
also with ``tools/train.py``. Each training is its own process; the
report gives its seconds per iteration (from the training log: every
iteration, and the mean without the first), its peak resident memory
(``wait4`` rusage of that process) and the PDAM / baseline ratios. With
``--rounds N`` the two trainings alternate N times and the ratios are
medians over the rounds (fairer on shared machines).

Example::

    python tools/analysis_tools/benchmark_pdam.py --iters 2 \
        --out work_dirs/benchmark_pdam.json

The backbone is randomly initialised (``init_cfg=None``; the ImageNet
file is not needed to time an iteration); the learning-rate schedule,
validation and checkpoints are switched off.
"""
import argparse
import json
import os
import os.path as osp
import re
import statistics
import subprocess
import sys
import tempfile

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEFAULT_CONFIG = ('configs/cyc_pdam/'
                  'pdam_r101-gn_1xb1+1-24k_bbbc039-to-kumar-256.py')
MMDET_KEYS = ('data_preprocessor', 'backbone', 'neck', 'rpn_head',
              'roi_head', 'train_cfg', 'test_cfg')
ITER_TIME = re.compile(r'Iter\(train\) \[\s*(\d+)/\d+\].*? time: ([\d.]+)')


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--config', default=DEFAULT_CONFIG)
    parser.add_argument('--iters', type=int, default=2)
    parser.add_argument('--rounds', type=int, default=1)
    parser.add_argument('--size', type=int, default=256,
                        help='synthetic tile size (the paper crops 256)')
    parser.add_argument('--threads', type=int, default=2,
                        help='OMP_NUM_THREADS of the trainings')
    parser.add_argument('--out', default=None, help='JSON report path')
    return parser.parse_args(argv)


def make_configs(config: str, data: str, iters: int, out_dir: str) -> dict:
    """Write the PDAM and baseline configs used for timing.

    Returns:
        dict: ``{'pdam': path, 'baseline': path}``.
    """
    from mmengine.config import Config
    paths = {}
    for variant in ('pdam', 'baseline'):
        cfg = Config.fromfile(config)
        cfg.model.backbone.init_cfg = None
        cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=iters,
                             val_interval=10**9)
        cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
        cfg.default_hooks.checkpoint = dict(type='CheckpointHook',
                                            interval=10**9)
        cfg.default_hooks.logger = dict(type='LoggerHook', interval=1)
        # log each iteration's own time (not a running mean)
        cfg.log_processor = dict(by_epoch=False, window_size=1)
        cfg.param_scheduler = []
        datasets = cfg.train_dataloader.dataset.datasets
        datasets[0].data_root = osp.join(data, 'source')
        datasets[1].data_root = osp.join(data, 'target')
        cfg.train_dataloader.num_workers = 0
        cfg.train_dataloader.persistent_workers = False
        cfg.test_dataloader.dataset.data_root = osp.join(data, 'target')
        cfg.test_dataloader.num_workers = 0
        cfg.test_dataloader.persistent_workers = False
        if variant == 'baseline':
            cfg.model = dict(
                type='MaskRCNN', _scope_='mmdet',
                **{k: cfg.model[k] for k in MMDET_KEYS})
            cfg.train_dataloader.batch_size = 1
            cfg.train_dataloader.sampler = dict(type='InfiniteSampler',
                                                shuffle=True)
            cfg.train_dataloader.dataset = datasets[0]
            cfg.custom_hooks = []
            cfg.find_unused_parameters = False
        else:
            cfg.custom_hooks = [h for h in cfg.custom_hooks
                                if h['type'] == 'GRLLambdaHook']
        paths[variant] = osp.join(out_dir, f'{variant}.py')
        cfg.dump(paths[variant])
    return paths


def train(config: str, work_dir: str, threads: int) -> dict:
    """``tools/train.py config`` in a child process: times and peak RSS."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    log = osp.join(work_dir, 'stdout.log')
    os.makedirs(work_dir, exist_ok=True)
    with open(log, 'w') as f:
        proc = subprocess.Popen(
            [sys.executable, osp.join(ROOT, 'tools', 'train.py'), config,
             '--work-dir', work_dir],
            cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
    text = open(log).read()
    if status != 0:
        raise RuntimeError(f'{config} failed:\n{text[-5000:]}')
    times = [float(t) for _, t in ITER_TIME.findall(text)]
    if not times:
        raise RuntimeError(f'no iteration times in {log}')
    return dict(seconds_per_iter=times,
                mean_after_first=(statistics.mean(times[1:])
                                  if len(times) > 1 else times[0]),
                peak_rss_mib=usage.ru_maxrss / 1024.0)


def count_params(config: str) -> int:
    from mmengine.config import Config

    from nucseg.registry import MODELS
    from nucseg.utils import register_all_modules
    register_all_modules()
    model = MODELS.build(Config.fromfile(config).model)
    return sum(p.numel() for p in model.parameters())


def main(argv=None) -> int:
    args = parse_args(argv)
    rounds = []
    with tempfile.TemporaryDirectory() as tmp:
        from nucseg.datasets.synthetic import make_dataset
        make_dataset(osp.join(tmp, 'source'), domain='he_kumar', num=4,
                     size=args.size, seed=0, splits=(1.0, 0.0, 0.0))
        make_dataset(osp.join(tmp, 'target'), domain='he_tnbc', num=4,
                     size=args.size, seed=1, splits=(1.0, 0.0, 0.0))
        configs = make_configs(osp.join(ROOT, args.config), tmp,
                               args.iters, tmp)
        params = {k: count_params(v) for k, v in configs.items()}
        for r in range(args.rounds):
            rounds.append({
                v: train(configs[v], osp.join(tmp, f'{v}_{r}'),
                         args.threads)
                for v in ('baseline', 'pdam')
            })
    ratio_time = statistics.median(
        r['pdam']['mean_after_first'] / r['baseline']['mean_after_first']
        for r in rounds)
    ratio_rss = statistics.median(
        r['pdam']['peak_rss_mib'] / r['baseline']['peak_rss_mib']
        for r in rounds)
    report = dict(config=args.config, iters=args.iters, size=args.size,
                  threads=args.threads, params=params, rounds=rounds,
                  ratio_time=ratio_time, ratio_peak_rss=ratio_rss,
                  ratio_params=params['pdam'] / params['baseline'])
    for r, res in enumerate(rounds):
        for name, label in (('baseline', 'Mask R-CNN baseline (1 image)'),
                            ('pdam', 'PDAM (1 source + 1 target)')):
            x = res[name]
            print(f'round {r}: {label}: '
                  f'{", ".join(f"{t:.1f}" for t in x["seconds_per_iter"])}'
                  f' s/iter, peak RSS {x["peak_rss_mib"]:.0f} MiB')
    print(f'parameters: baseline {params["baseline"] / 1e6:.1f} M, PDAM '
          f'{params["pdam"] / 1e6:.1f} M')
    print(f'PDAM / baseline: time x{ratio_time:.2f}, peak RSS '
          f'x{ratio_rss:.2f}, parameters x{report["ratio_params"]:.2f}')
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            json.dump(report, f, indent=2)
    return 0


if __name__ == '__main__':
    sys.exit(main())
