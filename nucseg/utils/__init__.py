from .checkpoint import register_safe_globals
from .io import (ImageReadError, LabelError, check_pair, read_image,
                 read_label, to_rgb_uint8, write_image, write_label)
from .labels import relabel_sequential
from .setup_env import register_all_modules
from .stain import (HE_STAIN_MATRIX, StainPriors, he_matrix,
                    stain_concentrations, stain_priors)

__all__ = [
    'register_all_modules', 'register_safe_globals', 'ImageReadError',
    'LabelError', 'read_image', 'read_label', 'write_image', 'write_label',
    'to_rgb_uint8', 'check_pair', 'relabel_sequential', 'HE_STAIN_MATRIX',
    'StainPriors', 'he_matrix', 'stain_concentrations', 'stain_priors'
]
