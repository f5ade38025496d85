"""Benchmark one adapter-training step of the frozen SAM image encoder.

For each encoder (``tiny``, ``vit_b``, ``vit_l``) the script times a
training step -- forward, backward into the adapters of the frozen
encoder, SGD step -- on
the CPU with ``segment_anything``'s unmodified attention (``native``) and
the SDPA implementations of :mod:`nucseg.models.layers.sam_attention`
(``sdpa``: relative position bias as additive mask; ``sdpa_fold``: bias
folded into ``q``/``k``), optionally also with gradient checkpointing
(``--with-cp``). It prints seconds per step (median of ``--iters`` steps
after ``--warmup`` steps; wall and process CPU time), the ratio of the wall
times to ``native`` measured in the same run with the same settings, and
the peak memory. ``--inference`` times a forward pass under
``torch.no_grad()`` in eval mode instead (feature extraction, e.g. for
SPROUT), where ``sdpa`` can use the fused kernel with its mask.

Peak memory: every configuration runs in a fresh Python subprocess (this
script with ``--worker``), so allocations of one configuration cannot
hide in the allocator caches of another. The worker reads
``resource.getrusage(RUSAGE_SELF).ru_maxrss`` (the process's resident
high-water mark, KiB on Linux) once after building the model and input
(``base``) and once after the timed steps (``peak``); ``step = peak -
base`` is the extra memory of a training step (activations saved for
backward, attention matrices, gradients). ``ru_maxrss`` counts resident
pages only, which is what matters on a machine without swap; it cannot go
down, so ``base`` also covers transient peaks of model construction.

The encoders have random weights (no checkpoint is read; the position
embedding and relative position tables, zero-initialised by
``segment_anything``, are filled with small random values so that the bias
paths compute something as with pretrained weights); ``image_size`` is the
pretraining size (1024 for ``vit_b``, as the official weights), so
other input sizes exercise the position-embedding interpolation as
real use does. The loss is ``mean(out * target)`` with a fixed random
``target``. All configurations of an encoder start from the same seed; as
a sanity check the table shows the relative difference of the first-step
loss from ``native`` (same settings), which should be at rounding level
(~1e-6 in fp32).

Example::

    python tools/analysis_tools/benchmark_sam_encoder.py \\
        --archs vit_b --vit-b-size 512 --iters 2 --warmup 1 \\
        --with-cp --out work_dirs/bench_sam_encoder.json
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from typing import Dict, List

IMPLS = ('native', 'sdpa', 'sdpa_fold')
PRETRAIN_SIZE = {'tiny': 256, 'vit_b': 1024, 'vit_l': 1024}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Time an adapter-training step of the SAM encoder '
        '(native vs SDPA attention).')
    parser.add_argument(
        '--archs', nargs='+', default=['tiny', 'vit_b'],
        choices=sorted(PRETRAIN_SIZE), help='encoders to benchmark')
    parser.add_argument(
        '--impls', nargs='+', default=list(IMPLS), choices=IMPLS,
        help='attention implementations (native is the baseline)')
    parser.add_argument(
        '--vit-b-size', type=int, default=1024,
        help='input side for vit_b (multiple of 16)')
    parser.add_argument(
        '--vit-l-size', type=int, default=1024,
        help='input side for vit_l (multiple of 16)')
    parser.add_argument(
        '--tiny-size', type=int, default=256,
        help='input side for tiny (multiple of 16)')
    parser.add_argument('--batch', type=int, default=1, help='batch size')
    parser.add_argument(
        '--iters', type=int, default=5, help='timed steps per config')
    parser.add_argument(
        '--warmup', type=int, default=1, help='untimed steps first')
    parser.add_argument(
        '--with-cp', action='store_true',
        help='also run every implementation with gradient checkpointing')
    parser.add_argument(
        '--bf16', action='store_true',
        help="run under torch.autocast('cpu', dtype=torch.bfloat16)")
    parser.add_argument(
        '--threads', type=int, default=0,
        help='torch threads in the workers (0: torch default)')
    parser.add_argument(
        '--inference', action='store_true',
        help='time a no-grad forward pass (eval mode) instead of a step')
    parser.add_argument('--seed', type=int, default=0, help='random seed')
    parser.add_argument(
        '--timeout', type=float, default=3600,
        help='seconds before a worker is stopped')
    parser.add_argument('--out', help='write the results as JSON here')
    # Internal: run one configuration and print its result as JSON.
    parser.add_argument(
        '--worker', action='store_true', help=argparse.SUPPRESS)
    parser.add_argument('--arch', help=argparse.SUPPRESS)
    parser.add_argument('--impl', help=argparse.SUPPRESS)
    parser.add_argument('--size', type=int, help=argparse.SUPPRESS)
    parser.add_argument('--cp', action='store_true', help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_worker(args: argparse.Namespace) -> Dict:
    """One configuration in this (fresh) process."""
    import torch

    from nucseg.models.backbones.sam_encoder import SAMImageEncoder
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = SAMImageEncoder(
        arch=args.arch,
        image_size=PRETRAIN_SIZE[args.arch],
        attn_impl=args.impl,
        with_cp=args.cp).train(not args.inference)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(('pos_embed', 'rel_pos_h', 'rel_pos_w')):
                p.normal_(0.0, 0.02)
    params = [p for p in model.parameters() if p.requires_grad]
    optim = torch.optim.SGD(params, lr=1e-3)
    gen = torch.Generator().manual_seed(args.seed)
    x = torch.randn(args.batch, 3, args.size, args.size, generator=gen)
    target = torch.randn(
        args.batch, 256, args.size // 16, args.size // 16, generator=gen)
    base = _maxrss_mb()

    def step() -> float:
        if args.inference:
            with torch.no_grad(), torch.autocast(
                    'cpu', dtype=torch.bfloat16, enabled=args.bf16):
                out, = model(x)
            return float((out.float() * target).mean())
        optim.zero_grad(set_to_none=True)
        with torch.autocast('cpu', dtype=torch.bfloat16,
                            enabled=args.bf16):
            out, = model(x)
        loss = (out.float() * target).mean()
        loss.backward()
        optim.step()
        return float(loss)

    first_loss = None
    times: List[float] = []
    cpu_times: List[float] = []
    for i in range(args.warmup + args.iters):
        start, cpu_start = time.perf_counter(), time.process_time()
        loss = step()
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu_start
        if first_loss is None:
            first_loss = loss
        if i >= args.warmup:
            times.append(elapsed)
            cpu_times.append(cpu)
    return dict(
        arch=args.arch,
        size=args.size,
        impl=args.impl,
        with_cp=bool(args.cp),
        bf16=bool(args.bf16),
        inference=bool(args.inference),
        batch=args.batch,
        threads=torch.get_num_threads(),
        s_per_iter=statistics.median(times),
        times=times,
        cpu_s_per_iter=statistics.median(cpu_times),
        base_rss_mb=base,
        peak_rss_mb=_maxrss_mb(),
        step_rss_mb=_maxrss_mb() - base,
        first_loss=first_loss)


def run_config(args: argparse.Namespace, arch: str, impl: str,
               cp: bool) -> Dict:
    size = getattr(args, f'{arch}_size')
    cmd = [
        sys.executable, os.path.abspath(__file__), '--worker', '--arch',
        arch, '--impl', impl, '--size', str(size), '--batch',
        str(args.batch), '--iters', str(args.iters), '--warmup',
        str(args.warmup), '--threads', str(args.threads), '--seed',
        str(args.seed)
    ]
    if cp:
        cmd.append('--cp')
    if args.bf16:
        cmd.append('--bf16')
    if args.inference:
        cmd.append('--inference')
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=args.timeout)
    if proc.returncode != 0:
        return dict(arch=arch, size=size, impl=impl, with_cp=cp,
                    error=proc.stderr.strip().splitlines()[-1:] or
                    [f'exit code {proc.returncode}'])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker:
        print(json.dumps(run_worker(args)))
        return 0
    for name in ('vit_b_size', 'vit_l_size', 'tiny_size'):
        if getattr(args, name) % 16:
            raise SystemExit(f'--{name.replace("_", "-")} must be a '
                             'multiple of 16')
    impls = ['native'] + [i for i in args.impls if i != 'native']
    results = []
    for arch in args.archs:
        for cp in ((False, True) if args.with_cp and not args.inference
                   else (False, )):
            for impl in impls:
                res = run_config(args, arch, impl, cp)
                results.append(res)
                print(f'done: {arch} {impl} with_cp={cp}', file=sys.stderr)

    def baseline(r):
        key = (r['arch'], r['with_cp'], 'native')
        for b in results:
            if (b['arch'], b['with_cp'], b['impl']) == key:
                return b
        return None

    what = 'no-grad forward' if args.inference else 'training step'
    print(f'{what}, batch {args.batch}, {args.iters} timed after '
          f'{args.warmup} warm-up, bf16 autocast {args.bf16}')
    header = (f'{"arch":<6} {"size":>5} {"impl":<10} {"cp":<3} '
              f'{"s/iter":>8} {"cpu s":>8} {"vs native":>9} {"peak MB":>8} '
              f'{"step MB":>8} {"loss dev":>9}')
    print(header)
    print('-' * len(header))
    for r in results:
        if 'error' in r:
            print(f'{r["arch"]:<6} {r["size"]:>5} {r["impl"]:<10} '
                  f'{"y" if r["with_cp"] else "n":<3} ERROR {r["error"]}')
            continue
        b = baseline(r)
        ok = b is not None and 'error' not in b
        r['ratio_vs_native'] = r['s_per_iter'] / b['s_per_iter'] if ok \
            else None
        r['loss_rel_dev'] = (abs(r['first_loss'] - b['first_loss']) /
                             max(abs(b['first_loss']), 1e-12)) if ok else None
        ratio = f'{r["ratio_vs_native"]:.2f}' if ok else 'n/a'
        dev = f'{r["loss_rel_dev"]:.1e}' if ok else 'n/a'
        print(f'{r["arch"]:<6} {r["size"]:>5} {r["impl"]:<10} '
              f'{"y" if r["with_cp"] else "n":<3} {r["s_per_iter"]:>8.3f} '
              f'{r["cpu_s_per_iter"]:>8.3f} {ratio:>9} '
              f'{r["peak_rss_mb"]:>8.0f} '
              f'{r["step_rss_mb"]:>8.0f} {dev:>9}')
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)),
                    exist_ok=True)
        with open(args.out, 'w') as f:
            json.dump(dict(settings=vars(args), results=results), f,
                      indent=2)
    return 0


if __name__ == '__main__':
    sys.exit(main())
