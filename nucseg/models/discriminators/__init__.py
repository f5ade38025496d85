from .domain_discriminator import DomainDiscriminator

__all__ = ['DomainDiscriminator']
