from .nuclei_encoder_decoder import NucleiEncoderDecoder

__all__ = ['NucleiEncoderDecoder']
