from .nnunet import NNUNetPlainConvUNet, nnunet_2d_topology
from .pixel_unet import PixelUNet
from .sam_encoder import AdapterBlock, SAMImageEncoder, resize_pos_embed
from .sam_med2d_encoder import SAMMed2DAdapter, SAMMed2DImageEncoder

__all__ = [
    'SAMImageEncoder', 'AdapterBlock', 'resize_pos_embed',
    'NNUNetPlainConvUNet', 'nnunet_2d_topology', 'SAMMed2DAdapter',
    'SAMMed2DImageEncoder', 'PixelUNet'
]
