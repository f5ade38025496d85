"""Writing a synthetic data set: per-sample seeds, splits, files.

:func:`make_dataset` derives the seed of sample ``i`` from ``(seed, domain
name, i)`` with :class:`numpy.random.SeedSequence` (:func:`sample_seed`),
so sample ``i`` does not depend on how many samples are generated.
"""
import json
import math
import os
import os.path as osp
import zlib
from typing import List, Optional, Sequence, Union

import numpy as np

from nucseg.utils.io import write_image, write_label
from .domains import resolve_domain
from .generator import generate_sample, parse_size
from .spec import DomainSpec

__all__ = ['SPLIT_NAMES', 'sample_seed', 'split_counts', 'make_dataset']

SPLIT_NAMES = ('train', 'val', 'test')


def sample_seed(seed: int, index: int, domain: str = '') -> int:
    """Seed of sample ``index`` of a data set generated with ``seed``.

    Derived with :class:`numpy.random.SeedSequence` from ``(seed,
    crc32(domain), index)``, so it does not depend on the data-set size and
    different domains get different layouts from the same ``seed``.
    """
    if seed < 0 or index < 0:
        raise ValueError(f'seed and index must be >= 0, got {seed}, {index}')
    ss = np.random.SeedSequence(
        entropy=int(seed),
        spawn_key=(zlib.crc32(domain.encode('utf-8')), int(index)))
    return int(ss.generate_state(1, dtype=np.uint64)[0])


def split_counts(num: int, ratios: Sequence[float]) -> List[int]:
    """Split ``num`` items by ``ratios`` (largest-remainder rounding).

    Every split with a positive ratio gets at least one item when ``num``
    allows it.

    Raises:
        ValueError: If the ratios are not 3 non-negative numbers summing to
            1 (within 1e-6).
    """
    ratios = [float(r) for r in ratios]
    if len(ratios) != len(SPLIT_NAMES) or min(ratios) < 0 or abs(
            sum(ratios) - 1.0) > 1e-6:
        raise ValueError(f'splits must be {len(SPLIT_NAMES)} non-negative '
                         f'ratios ({"/".join(SPLIT_NAMES)}) summing to 1, '
                         f'got {ratios}')
    exact = [r * num for r in ratios]
    counts = [int(math.floor(x)) for x in exact]
    order = sorted(range(len(ratios)), key=lambda i: (counts[i] - exact[i], i))
    for i in order[:num - sum(counts)]:
        counts[i] += 1
    positive = [i for i, r in enumerate(ratios) if r > 0]
    if num >= len(positive):
        for i in positive:
            if counts[i] == 0:
                counts[max(range(len(counts)), key=counts.__getitem__)] -= 1
                counts[i] += 1
    return counts


def make_dataset(out_dir: Union[str, os.PathLike],
                 domain: Union[str, DomainSpec],
                 num: int,
                 size: Union[int, Sequence[int]] = 256,
                 seed: int = 0,
                 splits: Sequence[float] = (0.7, 0.15, 0.15),
                 prefix: Optional[str] = None) -> dict:
    """Write a synthetic data set in the nucseg on-disk convention.

    Layout::

        out_dir/images/<name>.png     RGB uint8
        out_dir/labels/<name>.png     uint16 instance map
        out_dir/splits/{train,val,test}.txt
        out_dir/meta.json             generation parameters

    Names are ``<prefix>_<index:04d>`` (``prefix`` defaults to the domain
    name). Sample ``i`` is ``generate_sample(domain, size,
    sample_seed(seed, i, domain_name))`` whatever ``num`` is. Splits are
    contiguous blocks in index order (samples are i.i.d.): the first
    ``train`` names, then ``val``, then ``test``.

    Args:
        out_dir: Output root (created if needed; files of the same name are
            overwritten).
        domain (str | DomainSpec): Domain name or spec.
        num (int): Number of samples (>= 1).
        size (int | tuple[int, int]): Tile size ``S`` or ``(H, W)``.
        seed (int): Data-set seed (>= 0).
        splits (Sequence[float]): train/val/test ratios summing to 1.
        prefix (str, optional): Name prefix.

    Returns:
        dict: The metadata written to ``meta.json``.
    """
    spec = resolve_domain(domain)
    hw = parse_size(size)
    if int(num) < 1:
        raise ValueError(f'num must be >= 1, got {num}')
    num = int(num)
    counts = split_counts(num, splits)
    prefix = spec.name if prefix is None else str(prefix)
    if not prefix or any(c in prefix for c in '/\\'):
        raise ValueError(f'prefix must be a non-empty file-name part, got '
                         f'{prefix!r}')
    out_dir = os.fspath(out_dir)
    for sub in ('images', 'labels', 'splits'):
        os.makedirs(osp.join(out_dir, sub), exist_ok=True)
    samples = []
    bounds = np.cumsum([0] + counts)
    for i in range(num):
        name = f'{prefix}_{i:04d}'
        s = sample_seed(seed, i, spec.name)
        img, inst = generate_sample(spec, hw, s)
        write_image(osp.join(out_dir, 'images', name + '.png'), img)
        write_label(osp.join(out_dir, 'labels', name + '.png'), inst)
        split = SPLIT_NAMES[int(np.searchsorted(bounds, i, side='right')) - 1]
        samples.append(
            dict(
                name=name, split=split, seed=s, num_instances=int(inst.max())))
    for split in SPLIT_NAMES:
        names = [d['name'] for d in samples if d['split'] == split]
        with open(osp.join(out_dir, 'splits', split + '.txt'), 'w') as f:
            f.write(''.join(n + '\n' for n in names))
    meta = dict(
        generator='nucseg.datasets.synthetic',
        domain=spec.name,
        modality=spec.modality,
        num=num,
        size=list(hw),
        seed=int(seed),
        split_ratios=[float(r) for r in splits],
        split_counts=dict(zip(SPLIT_NAMES, counts)),
        prefix=prefix,
        domain_params=spec.to_dict(),
        samples=samples)
    with open(osp.join(out_dir, 'meta.json'), 'w') as f:
        json.dump(meta, f, indent=2)
    return meta
