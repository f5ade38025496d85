"""Run SAMDA's three training steps as a chain (each loads the last).

Step ``k`` trains with ``tools/train.py`` (``tools/dist_train.sh`` for
``--gpus > 1``) into ``WORK_DIR/step<k>`` with ``load_from`` set to the
previous step's last checkpoint; a final ``tools/test.py`` writes
``WORK_DIR/test/metrics.json`` (target-domain Dice and IoU).

Examples::

    # Table 1, MedSAM encoder, 4 target shots, Kasthuri++ -> EPFL
    python tools/samda/run_stages.py --preset kasthuripp2epfl \
        --work-dir work_dirs/samda_k2e_medsam_4shot --shots 4 \
        --sam-checkpoint checkpoints/medsam_vit_b.pth
    # 0-shot: steps 1 and 2, then test step 2's model
    python tools/samda/run_stages.py --preset kasthuripp2epfl \
        --work-dir work_dirs/samda_k2e_0shot --shots 0
    # CPU demo on synthetic EM
    python tools/samda/run_stages.py --preset synth \
        --work-dir work_dirs/samda_synth --shots 2

A step whose final checkpoint exists is skipped, so an interrupted chain
continues where it stopped; ``--resume`` also continues an interrupted
step from its last checkpoint.
"""
import argparse
import os
import os.path as osp
import subprocess
import sys
from typing import Dict, List, Optional

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

PRESETS: Dict[str, List[str]] = {
    'kasthuripp2epfl': [
        'configs/samda/samda-step1_sam-vit-b_1xb12-100e_kasthuripp2epfl-'
        '512.py',
        'configs/samda/samda-step2_sam-vit-b_1xb12-10e_kasthuripp2epfl-'
        '512.py',
        'configs/samda/samda-step3_sam-vit-b_1xb12-50e-10shot_'
        'kasthuripp2epfl-512.py',
    ],
    'epfl2kasthuripp': [
        'configs/samda/samda-step1_sam-vit-b_1xb12-100e_epfl2kasthuripp-'
        '512.py',
        'configs/samda/samda-step2_sam-vit-b_1xb12-10e_epfl2kasthuripp-'
        '512.py',
        'configs/samda/samda-step3_sam-vit-b_1xb12-50e-10shot_'
        'epfl2kasthuripp-512.py',
    ],
    'kasthuripp2epfl-sam-med2d': [
        'configs/samda/samda-step1_sam-med2d-b_1xb12-100e_kasthuripp2epfl-'
        '512.py',
        'configs/samda/samda-step2_sam-med2d-b_1xb12-10e_kasthuripp2epfl-'
        '512.py',
        'configs/samda/samda-step3_sam-med2d-b_1xb12-50e-10shot_'
        'kasthuripp2epfl-512.py',
    ],
    'synth': [
        'configs/samda/samda-step1_sam-tiny_1xb2-40it_synth-em2fibsem-64.py',
        'configs/samda/samda-step2_sam-tiny_1xb2-20it_synth-em2fibsem-64.py',
        'configs/samda/samda-step3_sam-tiny_1xb2-20it-2shot_synth-'
        'em2fibsem-64.py',
    ],
}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Run SAMDA steps 1-3 chained by load_from')
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument('--preset', choices=sorted(PRESETS),
                     help='the three configs of one setting')
    src.add_argument('--configs', nargs=3, metavar=('STEP1', 'STEP2',
                                                    'STEP3'),
                     help='three step configs')
    parser.add_argument('--work-dir', required=True,
                        help='root of the step work dirs')
    parser.add_argument(
        '--shots', type=int, default=None,
        help='target shots of step 3 (0 = stop after step 2, the 0-shot '
        'setting); default: the step-3 config')
    parser.add_argument('--shot-seed', type=int, default=None,
                        help='seed choosing the shots (default: config)')
    parser.add_argument('--sam-checkpoint', default=None,
                        help='SAM weights for step 1 (e.g. MedSAM); later '
                        'steps take them from the chained checkpoint')
    parser.add_argument('--source-root', default=None,
                        help='override the source data root in every step')
    parser.add_argument('--target-root', default=None,
                        help='override the target data root in every step')
    parser.add_argument('--gpus', type=int, default=1,
                        help='processes per step (>1: tools/dist_train.sh)')
    parser.add_argument('--resume', action='store_true',
                        help='resume an interrupted step from its last '
                        'checkpoint')
    parser.add_argument('--no-test', action='store_true',
                        help='skip the final tools/test.py')
    parser.add_argument('--dry-run', action='store_true',
                        help='print the commands only')
    parser.add_argument('--cfg-options', nargs='+', default=[],
                        metavar='KEY=VALUE',
                        help='options for every step (and the test)')
    args = parser.parse_args(argv)
    if args.shots is not None and args.shots < 0:
        parser.error('--shots must be >= 0')
    if args.gpus < 1:
        parser.error('--gpus must be >= 1')
    return args


def data_options(step: int, source: Optional[str],
                 target: Optional[str]) -> List[str]:
    """``--cfg-options`` putting the data roots where step ``step`` reads
    them (train: source / source + target / target; val and test:
    target)."""
    opts = []
    if target:
        opts += [f'val_dataloader.dataset.data_root={target}',
                 f'test_dataloader.dataset.data_root={target}']
    if step == 1 and source:
        opts.append(f'train_dataloader.dataset.data_root={source}')
    if step == 2:
        if source:
            opts.append(
                f'train_dataloader.dataset.datasets.0.data_root={source}')
        if target:
            opts.append(
                f'train_dataloader.dataset.datasets.1.data_root={target}')
    if step == 3 and target:
        opts.append(f'train_dataloader.dataset.data_root={target}')
    return opts


def max_iters(config: str, options: List[str]) -> int:
    """``train_cfg.max_iters`` of ``config`` after ``options``."""
    from mmengine.config import Config, DictAction
    cfg = Config.fromfile(config)
    if options:
        parser = argparse.ArgumentParser()
        parser.add_argument('--o', nargs='+', action=DictAction)
        cfg.merge_from_dict(parser.parse_args(['--o', *options]).o)
    return int(cfg.train_cfg.max_iters)


def last_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint named in mmengine's ``last_checkpoint`` file."""
    marker = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(marker):
        return None
    with open(marker) as f:
        path = f.read().strip()
    return path if osp.isfile(path) else None


def run(cmd: List[str], dry_run: bool) -> None:
    print('+ ' + ' '.join(cmd), flush=True)
    if dry_run:
        return
    env = dict(os.environ, PYTHON=os.environ.get('PYTHON', sys.executable))
    proc = subprocess.run(cmd, cwd=REPO, env=env)
    if proc.returncode != 0:
        raise SystemExit(f'step failed ({proc.returncode}): '
                         f'{" ".join(cmd)}')


def train_cmd(config: str, work_dir: str, gpus: int, resume: bool,
              options: List[str]) -> List[str]:
    if gpus > 1:
        cmd = ['bash', 'tools/dist_train.sh', config, str(gpus)]
    else:
        cmd = [sys.executable, 'tools/train.py', config]
    cmd += ['--work-dir', work_dir]
    if resume:
        cmd.append('--resume')
    if options:
        cmd += ['--cfg-options', *options]
    return cmd


def main(argv=None) -> int:
    args = parse_args(argv)
    configs = PRESETS[args.preset] if args.preset else list(args.configs)
    for cfg in configs:
        if not osp.isfile(osp.join(REPO, cfg)) and not osp.isfile(cfg):
            raise SystemExit(f'config not found: {cfg}')
    steps = [1, 2] if args.shots == 0 else [1, 2, 3]
    work_root = osp.abspath(args.work_dir)
    previous: Optional[str] = None
    for step in steps:
        config = configs[step - 1]
        work_dir = osp.join(work_root, f'step{step}')
        opts = list(args.cfg_options)
        opts += data_options(step, args.source_root, args.target_root)
        if step == 1 and args.sam_checkpoint:
            opts.append(f'model.sam_encoder.checkpoint={args.sam_checkpoint}')
        if step == 3 and args.shots is not None:
            opts.append(f'train_dataloader.dataset.num_shots={args.shots}')
        if step == 3 and args.shot_seed is not None:
            opts.append(
                f'train_dataloader.dataset.shot_seed={args.shot_seed}')
        final = osp.join(work_dir,
                         f'iter_{max_iters(osp.join(REPO, config), opts)}.pth')
        own_last = last_checkpoint(work_dir) if args.resume else None
        if own_last is not None:
            # mmengine resumes from load_from when it is set
            opts.append(f'load_from={own_last}')
        elif previous is not None:
            opts.append(f'load_from={previous}')
        if osp.isfile(final):
            print(f'step {step}: {final} exists, skipped', flush=True)
        else:
            run(train_cmd(config, work_dir, args.gpus, own_last is not None,
                          opts), args.dry_run)
        previous = final
    if not args.no_test:
        config = configs[steps[-1] - 1]
        opts = list(args.cfg_options) + data_options(
            steps[-1], args.source_root, args.target_root)
        if args.gpus > 1:
            cmd = ['bash', 'tools/dist_test.sh', config, previous,
                   str(args.gpus)]
        else:
            cmd = [sys.executable, 'tools/test.py', config, previous]
        cmd += ['--work-dir', osp.join(work_root, 'test')]
        if opts:
            cmd += ['--cfg-options', *opts]
        run(cmd, args.dry_run)
    return 0


if __name__ == '__main__':
    sys.exit(main())
