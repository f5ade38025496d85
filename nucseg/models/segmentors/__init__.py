from .ama_sam import AMASAM
from .haematoxylin_watershed import HaematoxylinWatershed
from .nuclei_encoder_decoder import NucleiEncoderDecoder
from .samda import SAMDA
from .self_ensembling_uda import SelfEnsemblingUDA
from .sprout import SPROUT
from .training_free import TrainingFreeSegmentor

__all__ = [
    'NucleiEncoderDecoder', 'AMASAM', 'SPROUT', 'SAMDA', 'SelfEnsemblingUDA',
    'HaematoxylinWatershed', 'TrainingFreeSegmentor'
]
