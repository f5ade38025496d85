from .domain_discriminator import DomainDiscriminator
from .image_level_discriminator import PDAMImageDiscriminator
from .instance_level_discriminator import PDAMInstanceDiscriminator
from .output_space_discriminator import OutputSpaceDiscriminator
from .patch_discriminator import PatchDiscriminator
from .semantic_level_discriminator import PDAMSemanticDiscriminator

__all__ = [
    'DomainDiscriminator', 'PatchDiscriminator', 'PDAMImageDiscriminator',
    'PDAMSemanticDiscriminator', 'PDAMInstanceDiscriminator',
    'OutputSpaceDiscriminator'
]
