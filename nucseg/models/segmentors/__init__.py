from .ama_sam import AMASAM
from .nuclei_encoder_decoder import NucleiEncoderDecoder

__all__ = ['NucleiEncoderDecoder', 'AMASAM']
