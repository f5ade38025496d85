from .cgrl_loss import CGRLLoss, inverse_frequency_weights
from .dice_ce_loss import DiceCELoss, deep_supervision_weights
from .dice_focal_loss import DiceFocalLoss
from .perceptual_loss import PerceptualLoss, gram_matrix
from .self_ensembling import (binary_entropy_loss, consistency_loss,
                              sample_dihedral_ops)

__all__ = [
    'CGRLLoss', 'inverse_frequency_weights', 'DiceFocalLoss', 'DiceCELoss',
    'deep_supervision_weights', 'PerceptualLoss', 'gram_matrix',
    'binary_entropy_loss', 'consistency_loss', 'sample_dihedral_ops'
]
