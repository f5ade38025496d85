from .sam_decoder_heads import (BaseSAMDecoderHead, HRDecoderHead,
                                SAMMaskDecoderHead, feature_unensemble,
                                pixel_ensemble)

__all__ = [
    'BaseSAMDecoderHead', 'SAMMaskDecoderHead', 'HRDecoderHead',
    'feature_unensemble', 'pixel_ensemble'
]
