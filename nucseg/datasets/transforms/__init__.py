from .formatting import PackNucleiInputs
from .loading import LoadInstanceAnnotations, LoadNucleiImageFromFile
from .transforms import (GenerateNucleiTarget, HEDStainJitter,
                         RandomFlipRot90, RandomInstanceCrop,
                         nuclei_boundaries)

__all__ = [
    'LoadNucleiImageFromFile', 'LoadInstanceAnnotations',
    'RandomInstanceCrop', 'RandomFlipRot90',
    'HEDStainJitter', 'GenerateNucleiTarget', 'nuclei_boundaries',
    'PackNucleiInputs'
]
