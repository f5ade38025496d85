from .cgrl_loss import CGRLLoss, inverse_frequency_weights
from .dice_focal_loss import DiceFocalLoss

__all__ = ['CGRLLoss', 'inverse_frequency_weights', 'DiceFocalLoss']
