from .cyclegan import CycleDiscriminators, CycleGAN, CycleGenerators
from .data_preprocessor import UnpairedDataPreprocessor
from .image_pool import ImagePool
from .resnet_generator import ResnetGenerator

__all__ = [
    'CycleGAN', 'CycleGenerators', 'CycleDiscriminators',
    'UnpairedDataPreprocessor', 'ImagePool', 'ResnetGenerator'
]
