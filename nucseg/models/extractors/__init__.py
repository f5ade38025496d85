from .filter_bank import FilterBankExtractor, gaussian_kernel1d
from .sam_extractor import SAMExtractor
from .tiled import TiledExtractor, tile_origins
from .torchvision_extractor import (TimmExtractor, TorchvisionExtractor,
                                    load_checkpoint_weights_only)

__all__ = [
    'FilterBankExtractor', 'TiledExtractor', 'TorchvisionExtractor',
    'TimmExtractor', 'gaussian_kernel1d', 'tile_origins',
    'load_checkpoint_weights_only', 'SAMExtractor'
]
