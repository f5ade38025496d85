"""History of generated images for discriminator updates (Shrivastava et
al. 2017), as CycleGAN uses it."""
from typing import List

import torch
from torch import Tensor

__all__ = ['ImagePool']


class ImagePool:
    """Buffer of up to ``size`` previously generated images.

    :meth:`query` returns, for each image of the batch, the image itself
    while the pool fills up; afterwards, with probability 0.5, a random
    stored image (replaced in the pool by the new one), otherwise the new
    image. ``size=0`` returns the batch unchanged. Random draws use
    ``torch``'s global generator (seeded by the runner). The pool is not
    part of checkpoints: after ``--resume`` it fills up again.

    Args:
        size (int): Capacity (50 in CycleGAN).
    """

    def __init__(self, size: int = 50) -> None:
        if int(size) < 0:
            raise ValueError(f'ImagePool size must be >= 0, got {size}')
        self.size = int(size)
        self.images: List[Tensor] = []

    def query(self, images: Tensor) -> Tensor:
        """Mix the batch with stored images.

        Args:
            images (Tensor): ``B x C x H x W`` generated images (detached
                copies are stored).

        Returns:
            Tensor: ``B x C x H x W`` images for the discriminator.
        """
        if self.size == 0:
            return images
        out = []
        for image in images.detach():
            image = image.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(image)
                out.append(image)
            elif torch.rand(()) < 0.5:
                k = int(torch.randint(len(self.images), ()))
                out.append(self.images[k].clone())
                self.images[k] = image
            else:
                out.append(image)
        return torch.cat(out, 0)
