"""Multi-domain data: domain-tagged concatenation and batch composition."""
import itertools
from typing import Iterator, List, Optional, Sequence, Union

import numpy as np
import torch
from mmengine.dataset import BaseDataset, ConcatDataset
from mmengine.dist import get_dist_info, sync_random_seed
from torch.utils.data import Sampler

from nucseg.registry import DATA_SAMPLERS, DATASETS


@DATASETS.register_module()
class MultiDomainDataset(ConcatDataset):
    """Concatenation of data sets, each tagged as one domain.

    Sample ``i`` of sub-dataset ``d`` carries ``domain`` (name),
    ``domain_id = d`` and ``is_primary`` in its results and therefore in the
    packed data sample's metainfo. Used for multi-dataset training (AMA-SAM:
    one primary and several auxiliary data sets) and for UDA (source =
    domain 0, target = domain 1, see :class:`MultiDomainSampler`).

    Args:
        datasets (list[dict | NucleiDataset]): Sub-datasets (configs or
            instances built with ``lazy_init=True``). Each must provide
            ``set_domain(name, domain_id, is_primary)``.
        primary (int | str | list): Index or name (or list of them) of the
            primary domain(s). Defaults to 0.
        domain_names (list[str], optional): Override the domain names;
            default to each dataset's own ``domain``.
        lazy_init (bool): Defer loading annotations. Defaults to False.
    """

    def __init__(self,
                 datasets: Sequence[Union[BaseDataset, dict]],
                 primary: Union[int, str, Sequence[Union[int, str]]] = 0,
                 domain_names: Optional[Sequence[str]] = None,
                 lazy_init: bool = False) -> None:
        if not datasets:
            raise ValueError('MultiDomainDataset needs at least one dataset')
        built = []
        for i, ds in enumerate(datasets):
            if isinstance(ds, dict):
                ds = DATASETS.build(dict(ds, lazy_init=True))
            if not hasattr(ds, 'set_domain'):
                raise TypeError(
                    f'datasets[{i}] ({type(ds).__name__}) has no '
                    'set_domain(); use NucleiDataset or a subclass')
            built.append(ds)
        names = list(domain_names) if domain_names is not None else [
            ds.domain for ds in built
        ]
        if len(names) != len(built):
            raise ValueError(f'domain_names has {len(names)} entries for '
                             f'{len(built)} datasets')
        if len(set(names)) != len(names):
            raise ValueError(f'domain names must be unique, got {names}')
        primaries = primary if isinstance(primary,
                                          (list, tuple)) else [primary]
        primary_ids = set()
        for p in primaries:
            if isinstance(p, str):
                if p not in names:
                    raise KeyError(f'primary domain {p!r} not in {names}')
                p = names.index(p)
            if not 0 <= int(p) < len(built):
                raise IndexError(f'primary index {p} out of range for '
                                 f'{len(built)} datasets')
            primary_ids.add(int(p))
        for i, ds in enumerate(built):
            ds.set_domain(names[i], i, i in primary_ids)
        self.domain_names: List[str] = names
        self.primary_ids = sorted(primary_ids)
        super().__init__(built, lazy_init=lazy_init)

    @property
    def num_domains(self) -> int:
        return len(self.datasets)

    @property
    def domain_sizes(self) -> List[int]:
        """Number of samples of each domain (after ``full_init``)."""
        self.full_init()
        return [len(ds) for ds in self.datasets]

    def domain_indices(self, domain_id: int) -> range:
        """Global indices of the samples of one domain."""
        self.full_init()
        start = 0 if domain_id == 0 else self.cumulative_sizes[domain_id - 1]
        return range(start, self.cumulative_sizes[domain_id])


@DATA_SAMPLERS.register_module()
class MultiDomainSampler(Sampler):
    """Infinite sampler composing every batch from fixed domain shares.

    Each consecutive group of ``batch_size`` indices holds
    ``domain_ratio[d]`` samples of domain ``d`` (source first, then target
    for UDA), so mmengine's default batch sampler with the same batch size
    yields batches of that composition, e.g. 2 source + 2 target images.
    Every domain is an independently shuffled infinite stream, split across
    distributed ranks. Use with iteration-based training loops.

    Args:
        dataset (MultiDomainDataset): The data set.
        batch_size (int): Batch size per GPU; must equal the dataloader's.
        domain_ratio (list[int], optional): Samples per domain in a batch,
            summing to ``batch_size``. Defaults to an even split.
        shuffle (bool): Shuffle each domain stream. Defaults to True.
        seed (int, optional): Random seed (synced across ranks).
    """

    def __init__(self,
                 dataset: MultiDomainDataset,
                 batch_size: int,
                 domain_ratio: Optional[Sequence[int]] = None,
                 shuffle: bool = True,
                 seed: Optional[int] = None) -> None:
        if not hasattr(dataset, 'domain_indices'):
            raise TypeError('MultiDomainSampler needs a MultiDomainDataset, '
                            f'got {type(dataset).__name__}')
        n = dataset.num_domains
        if domain_ratio is None:
            if batch_size % n:
                raise ValueError(
                    f'batch_size {batch_size} is not divisible by the '
                    f'{n} domains; give domain_ratio explicitly')
            domain_ratio = [batch_size // n] * n
        domain_ratio = [int(r) for r in domain_ratio]
        if len(domain_ratio) != n or sum(domain_ratio) != batch_size or min(
                domain_ratio) < 0:
            raise ValueError(
                f'domain_ratio {domain_ratio} must have {n} non-negative '
                f'entries summing to batch_size={batch_size}')
        self.dataset = dataset
        self.batch_size = batch_size
        self.domain_ratio = domain_ratio
        self.shuffle = shuffle
        self.rank, self.world_size = get_dist_info()
        self.seed = sync_random_seed() if seed is None else seed
        for d, size in enumerate(dataset.domain_sizes):
            if size == 0 and domain_ratio[d] > 0:
                raise ValueError(
                    f'domain {dataset.domain_names[d]!r} has no samples')

    def _stream(self, domain_id: int) -> Iterator[int]:
        """Infinite stream of global indices of one domain (all ranks)."""
        indices = np.asarray(self.dataset.domain_indices(domain_id))
        g = torch.Generator()
        g.manual_seed(self.seed + 1000 * domain_id)
        while True:
            if self.shuffle:
                order = torch.randperm(len(indices), generator=g).numpy()
                yield from indices[order].tolist()
            else:
                yield from indices.tolist()

    def __iter__(self) -> Iterator[int]:
        streams = [
            itertools.islice(self._stream(d), self.rank, None,
                             self.world_size)
            for d in range(len(self.domain_ratio))
        ]
        while True:
            for d, k in enumerate(self.domain_ratio):
                for _ in range(k):
                    yield next(streams[d])

    def __len__(self) -> int:
        return len(self.dataset)

    def set_epoch(self, epoch: int) -> None:
        """Not used: the streams are infinite and seeded once."""
