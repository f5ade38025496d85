from .formatting import PackNucleiInputs
from .inpainting import (NucleiInpainting, inpaint_unannotated_nuclei,
                         unannotated_nuclei_mask)
from .instance_targets import (GenerateInstanceTargets,
                               instance_boxes_and_masks)
from .intensity import InvertIntensity
from .loading import LoadInstanceAnnotations, LoadNucleiImageFromFile
from .transforms import (GenerateNucleiTarget, HEDStainJitter,
                         RandomFlipRot90, RandomInstanceCrop,
                         nuclei_boundaries)

__all__ = [
    'LoadNucleiImageFromFile', 'LoadInstanceAnnotations',
    'RandomInstanceCrop', 'RandomFlipRot90',
    'HEDStainJitter', 'GenerateNucleiTarget', 'nuclei_boundaries',
    'PackNucleiInputs', 'InvertIntensity', 'NucleiInpainting',
    'inpaint_unannotated_nuclei', 'unannotated_nuclei_mask',
    'GenerateInstanceTargets', 'instance_boxes_and_masks'
]
