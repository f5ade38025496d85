"""Generate a synthetic nuclei data set in the nucseg on-disk convention.

Example::

    python tools/misc/make_synthetic.py --out data/synth_kumar \\
        --domain he_kumar --num 60 --size 256 --seed 0
    python tools/misc/make_synthetic.py --list-domains

Writes ``OUT/images/<name>.png`` (RGB uint8), ``OUT/labels/<name>.png``
(uint16 instance map), ``OUT/splits/{train,val,test}.txt`` and
``OUT/meta.json``. The generation logic lives in
:mod:`nucseg.datasets.synthetic`.
"""
import argparse
import os.path as osp
import sys
import time

try:
    import nucseg  # noqa: F401
except ImportError:  # run from a source checkout without installation
    sys.path.insert(0,
                    osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))

import nucseg.datasets.synthetic as synthetic  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    """Parse command-line arguments."""
    parser = argparse.ArgumentParser(
        description='Generate a synthetic nuclei data set (images, '
        'instance labels, splits, meta.json).')
    parser.add_argument('--out', help='output root directory')
    parser.add_argument(
        '--domain',
        default='he_kumar',
        help='synthetic domain (see --list-domains); default he_kumar')
    parser.add_argument(
        '--num', type=int, default=10, help='number of images (default 10)')
    parser.add_argument(
        '--size',
        type=int,
        nargs='+',
        default=[256],
        metavar='S',
        help='tile size: S for SxS or H W (default 256)')
    parser.add_argument(
        '--seed', type=int, default=0, help='data-set seed (default 0)')
    parser.add_argument(
        '--splits',
        type=float,
        nargs=3,
        default=[0.7, 0.15, 0.15],
        metavar=('TRAIN', 'VAL', 'TEST'),
        help='split ratios summing to 1 (default 0.7 0.15 0.15)')
    parser.add_argument(
        '--prefix', default=None, help='name prefix (default: domain name)')
    parser.add_argument(
        '--list-domains',
        action='store_true',
        help='print the available domains and exit')
    args = parser.parse_args(argv)
    if not args.list_domains:
        if not args.out:
            parser.error('--out is required (unless --list-domains)')
        if len(args.size) not in (1, 2):
            parser.error('--size takes S or H W')
        if args.domain not in synthetic.DOMAINS:
            parser.error(f'unknown domain {args.domain!r}; valid domains: '
                         f'{", ".join(synthetic.list_domains())}')
    return args


def main(argv=None) -> int:
    """Entry point; returns the process exit code."""
    args = parse_args(argv)
    if args.list_domains:
        for name in synthetic.list_domains():
            spec = synthetic.DOMAINS[name]
            print(f'{name:12s} [{spec.modality}] {spec.description}')
        return 0
    size = args.size[0] if len(args.size) == 1 else tuple(args.size)
    t0 = time.perf_counter()
    try:
        meta = synthetic.make_dataset(
            args.out,
            args.domain,
            num=args.num,
            size=size,
            seed=args.seed,
            splits=args.splits,
            prefix=args.prefix)
    except (ValueError, KeyError, TypeError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    dt = time.perf_counter() - t0
    n_inst = sum(s['num_instances'] for s in meta['samples'])
    counts = ', '.join(f'{k} {v}' for k, v in meta['split_counts'].items())
    print(f'wrote {meta["num"]} {meta["domain"]} images of '
          f'{meta["size"][0]}x{meta["size"][1]} to {args.out} '
          f'({counts}; {n_inst} instances) in {dt:.2f} s')
    return 0


if __name__ == '__main__':
    sys.exit(main())
