"""Time SAMDA's training iterations per step against nnU-Net alone.

Builds the real-size model of a SAMDA config (nnU-Net 2-D at 512 px, SAM
vit_b at 1024 px; random weights, nothing is read from disk) for each of
the three steps and times ``train_step`` (data preprocessor, forward,
backward, SGD step of the trainable parameters) on random grey patches.
The baseline, measured in the same run, is the same nnU-Net without the
SAM branch trained with the same loss and optimizer. Prints seconds per
iteration and the ratio to the baseline.

Example::

    python tools/analysis_tools/benchmark_samda.py --batch 2 --iters 3

Step 2 pairs sample ``2i`` (source) with ``2i + 1`` (target), so the batch
must be even when step 2 is timed.
"""
import argparse
import os.path as osp
import sys
import time

import numpy as np
import torch

try:
    import nucseg  # noqa: F401
except ImportError:  # running from a source checkout without install
    sys.path.insert(
        0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

CONFIGS = {
    1: 'configs/samda/samda-step1_sam-vit-b_1xb12-100e_kasthuripp2epfl-'
    '512.py',
    2: 'configs/samda/samda-step2_sam-vit-b_1xb12-10e_kasthuripp2epfl-'
    '512.py',
    3: 'configs/samda/samda-step3_sam-vit-b_1xb12-50e-10shot_'
    'kasthuripp2epfl-512.py',
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--iters', type=int, default=3,
                        help='timed iterations per step')
    parser.add_argument('--warmup', type=int, default=1,
                        help='untimed iterations before them')
    parser.add_argument('--steps', type=int, nargs='+', default=[1, 2, 3])
    parser.add_argument('--threads', type=int, default=None)
    args = parser.parse_args(argv)
    if 2 in args.steps and args.batch % 2:
        parser.error('step 2 pairs source and target images: --batch must '
                     'be even')
    return args


def make_batch(batch: int, size: int, stage: int, seed: int = 0) -> dict:
    from mmengine.structures import PixelData

    from nucseg.structures import NucleiDataSample
    rng = np.random.default_rng(seed)
    inputs, samples = [], []
    for i in range(batch):
        grey = rng.integers(0, 256, (size, size), dtype=np.uint8)
        inputs.append(torch.from_numpy(np.repeat(grey[None], 3, 0)))
        s = NucleiDataSample()
        mask = torch.from_numpy((rng.random((size, size)) > 0.8).astype(
            np.int64))
        s.gt_sem_seg = PixelData(data=mask[None])
        s.set_metainfo(dict(domain_id=i % 2 if stage == 2 else 0))
        samples.append(s)
    return dict(inputs=inputs, data_samples=samples)


def optim_for(model, lr=1e-2):
    from mmengine.optim import build_optim_wrapper
    return build_optim_wrapper(
        model,
        dict(type='OptimWrapper',
             constructor='TrainableParamsOptimWrapperConstructor',
             optimizer=dict(type='SGD', lr=lr, momentum=0.99, nesterov=True,
                            weight_decay=3e-5),
             clip_grad=dict(max_norm=12)))


def time_steps(fn, iters: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    start = time.perf_counter()
    for _ in range(iters):
        fn()
    return (time.perf_counter() - start) / iters


def time_unet(cfg, batch: int, size: int, iters: int,
              warmup: int) -> float:
    """Baseline: the nnU-Net alone, same loss (deep supervision), same
    SGD."""
    from nucseg.models.losses import DiceCELoss
    from nucseg.registry import MODELS
    unet = MODELS.build(cfg.model.unet).train()
    loss_fn = DiceCELoss()
    optim = optim_for(unet)
    data = make_batch(batch, size, 1)
    x = torch.stack([d[:1].float() for d in data['inputs']])
    x = (x - x.mean()) / x.std()
    target = torch.stack([s.gt_sem_seg.data[0] for s in
                          data['data_samples']])

    def step():
        optim.update_params(loss_fn(unet(x, deep_supervision=True),
                                    target))

    return time_steps(step, iters, warmup)


def time_samda(cfg, stage: int, batch: int, size: int, iters: int,
               warmup: int) -> float:
    """``train_step`` of the real-size SAMDA model of one step."""
    from nucseg.registry import MODELS
    cfg.model.sam_encoder.checkpoint = None
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).train()
    optim = optim_for(model)
    data = make_batch(batch, size, stage)
    return time_steps(lambda: model.train_step(data, optim), iters, warmup)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from mmengine.config import Config

    from nucseg.utils import register_all_modules
    register_all_modules()
    root = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    cfg = Config.fromfile(osp.join(root, CONFIGS[1]))
    size = int(cfg.model.unet.patch_size[0])
    base = time_unet(cfg, args.batch, size, args.iters, args.warmup)
    print(f'nnU-Net alone (batch {args.batch}, {size} px): {base:.2f} '
          's/iter', flush=True)
    for step in args.steps:
        cfg = Config.fromfile(osp.join(root, CONFIGS[step]))
        sec = time_samda(cfg, step, args.batch, size, args.iters,
                         args.warmup)
        print(f'SAMDA step {step} (batch {args.batch}): {sec:.2f} s/iter, '
              f'{sec / base:.2f}x nnU-Net alone', flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
