from .multi_domain import MultiDomainDataset, MultiDomainSampler
from .nuclei_dataset import NucleiDataset
from .transforms import *  # noqa: F401,F403

__all__ = ['NucleiDataset', 'MultiDomainDataset', 'MultiDomainSampler']
