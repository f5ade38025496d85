"""Unpaired two-domain data for image translation (CycleGAN)."""
from typing import Optional, Union

import numpy as np

from nucseg.registry import DATASETS

__all__ = ['UnpairedNucleiDataset']


@DATASETS.register_module()
class UnpairedNucleiDataset:
    """Yields one image of domain A and one of domain B per sample.

    Sample ``i`` holds image ``i mod |A|`` of A and a uniformly random
    image of B (as CycleGAN's unaligned data set), each processed by its
    own sub-dataset's pipeline, e.g. for fluorescence -> H&E::

        domain_a=dict(type='NucleiDataset', data_root='data/bbbc039',
                      split='train', require_labels=False,
                      pipeline=[LoadNucleiImageFromFile,
                                InvertIntensity, RandomInstanceCrop,
                                RandomFlipRot90, PackNucleiInputs])
        domain_b=dict(type='NucleiDataset', data_root='data/monuseg', ...)

    Output: ``dict(inputs=dict(img_a=3xHxW, img_b=3xH'xW'),
    data_samples=<A's data sample>)`` whose metainfo also holds
    ``img_path_b`` and ``name_b``; use ``UnpairedDataPreprocessor``.
    The length is ``max(|A|, |B|)``.

    Args:
        domain_a (dict | Dataset): Domain A (source) data set.
        domain_b (dict | Dataset): Domain B (target) data set.
        seed (int, optional): Seed of the B draws; ``None`` uses numpy's
            global generator (seeded per worker by mmengine).
    """

    def __init__(self,
                 domain_a: Union[dict, object],
                 domain_b: Union[dict, object],
                 seed: Optional[int] = None) -> None:
        self.dataset_a = DATASETS.build(domain_a) if isinstance(
            domain_a, dict) else domain_a
        self.dataset_b = DATASETS.build(domain_b) if isinstance(
            domain_b, dict) else domain_b
        self._rng = np.random.default_rng(seed) if seed is not None else None
        self._initialized = False

    def full_init(self) -> None:
        """Load both sub-datasets; raise if one of them is empty."""
        if self._initialized:
            return
        for name, ds in (('domain_a', self.dataset_a),
                         ('domain_b', self.dataset_b)):
            if hasattr(ds, 'full_init'):
                ds.full_init()
            if len(ds) == 0:
                raise ValueError(f'UnpairedNucleiDataset.{name} is empty '
                                 f'({getattr(ds, "data_root", ds)})')
        self._initialized = True

    @property
    def metainfo(self) -> dict:
        """Domain names and the metainfo of domain A."""
        meta = dict(getattr(self.dataset_a, 'metainfo', {}))
        meta.update(
            domain_a=getattr(self.dataset_a, 'domain', 'a'),
            domain_b=getattr(self.dataset_b, 'domain', 'b'))
        return meta

    def __len__(self) -> int:
        self.full_init()
        return max(len(self.dataset_a), len(self.dataset_b))

    def __getitem__(self, idx: int) -> dict:
        self.full_init()
        a = self.dataset_a[idx % len(self.dataset_a)]
        n_b = len(self.dataset_b)
        j = int(self._rng.integers(n_b) if self._rng is not None else
                np.random.randint(n_b))
        b = self.dataset_b[j]
        sample = a['data_samples']
        meta_b = b['data_samples'].metainfo
        sample.set_metainfo(
            dict(img_path_b=meta_b.get('img_path'),
                 name_b=meta_b.get('name')))
        return dict(
            inputs=dict(img_a=a['inputs'], img_b=b['inputs']),
            data_samples=sample)
