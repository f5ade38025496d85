from .few_shot import FewShotNucleiDataset, pick_shots
from .multi_domain import MultiDomainDataset, MultiDomainSampler
from .nuclei_dataset import NucleiDataset
from .transforms import *  # noqa: F401,F403
from .unpaired import UnpairedNucleiDataset

__all__ = [
    'NucleiDataset', 'MultiDomainDataset', 'MultiDomainSampler',
    'FewShotNucleiDataset', 'pick_shots', 'UnpairedNucleiDataset'
]
