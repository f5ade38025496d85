import itertools

import pytest
from mmengine.dataset import pseudo_collate
from torch.utils.data import DataLoader

from nucseg.datasets import MultiDomainDataset, MultiDomainSampler
from nucseg.utils import register_all_modules

register_all_modules()

PIPELINE = [
    dict(type='LoadNucleiImageFromFile'),
    dict(type='LoadInstanceAnnotations'),
    dict(type='RandomInstanceCrop', crop_size=32),
    dict(type='GenerateNucleiTarget'),
    dict(type='PackNucleiInputs'),
]


def _dataset(domains, primary='he_kumar', lazy=False):
    return MultiDomainDataset(
        datasets=[
            dict(type='NucleiDataset', data_root=root, pipeline=PIPELINE)
            for root in domains.values()
        ],
        primary=primary,
        lazy_init=lazy)


def test_tags_and_sizes(synthetic_domains):
    ds = _dataset(synthetic_domains, primary='he_tnbc')
    assert ds.domain_names == ['he_kumar', 'he_tnbc', 'fluo']
    assert ds.domain_sizes == [6, 6, 6] and len(ds) == 18
    assert ds.primary_ids == [1]
    for idx, dom, primary in [(0, 0, False), (7, 1, True), (17, 2, False)]:
        meta = ds[idx]['data_samples'].metainfo
        assert meta['domain_id'] == dom
        assert meta['is_primary'] is primary
        assert meta['domain'] == ds.domain_names[dom]
    assert list(ds.domain_indices(1)) == list(range(6, 12))


def test_bad_configuration(synthetic_domains):
    with pytest.raises(KeyError, match='nope'):
        _dataset(synthetic_domains, primary='nope')
    with pytest.raises(IndexError):
        _dataset(synthetic_domains, primary=5)
    with pytest.raises(ValueError, match='at least one'):
        MultiDomainDataset(datasets=[])
    ds = _dataset(synthetic_domains)
    with pytest.raises(ValueError, match='not divisible'):
        MultiDomainSampler(ds, batch_size=4)
    with pytest.raises(ValueError, match='summing'):
        MultiDomainSampler(ds, batch_size=4, domain_ratio=[1, 1, 1])


def test_sampler_composes_batches(synthetic_domains):
    ds = _dataset(synthetic_domains)
    sampler = MultiDomainSampler(ds, batch_size=4, domain_ratio=[2, 1, 1],
                                 seed=3)
    idx = list(itertools.islice(iter(sampler), 4 * 30))
    for b in range(30):
        batch = idx[4 * b:4 * b + 4]
        doms = [0 if i < 6 else 1 if i < 12 else 2 for i in batch]
        assert doms == [0, 0, 1, 2]
    # Every sample of each domain is visited in each pass (shuffled).
    dom0 = [i for i in idx if i < 6][:6]
    assert sorted(dom0) == list(range(6))
    again = list(itertools.islice(iter(
        MultiDomainSampler(ds, batch_size=4, domain_ratio=[2, 1, 1],
                           seed=3)), 4 * 30))
    assert again == idx  # deterministic by seed
    loader = DataLoader(ds, batch_size=4, sampler=sampler,
                        collate_fn=pseudo_collate)
    batch = next(iter(loader))
    ids = [s.metainfo['domain_id'] for s in batch['data_samples']]
    assert ids == [0, 0, 1, 2]


def test_sampler_splits_ranks(synthetic_domains, monkeypatch):
    ds = _dataset(synthetic_domains)
    streams = []
    for rank in range(2):
        monkeypatch.setattr(
            'nucseg.datasets.multi_domain.get_dist_info',
            lambda r=rank: (r, 2))
        s = MultiDomainSampler(ds, batch_size=3, seed=0)
        streams.append(list(itertools.islice(iter(s), 3 * 4)))
    # Ranks see disjoint samples within one pass of a domain (3 each of 6).
    dom0 = [[i for i in st if i < 6][:3] for st in streams]
    assert not set(dom0[0]) & set(dom0[1])
