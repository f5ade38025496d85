"""Intensity transforms."""
import numpy as np
from mmcv.transforms import BaseTransform

from nucseg.registry import TRANSFORMS

__all__ = ['InvertIntensity']


@TRANSFORMS.register_module()
class InvertIntensity(BaseTransform):
    """``img <- max_value - img``: bright nuclei on black -> dark on white.

    CyC-PDAM (Sec. 4.2) inverts fluorescence patches before translating
    them, so they look like bright-field images (dark nuclei on a light
    background). Grey images are already 3-channel after
    ``LoadNucleiImageFromFile``.

    Required keys: ``img`` (uint8, or float in ``[0, max_value]``).
    Modified keys: ``img``.

    Args:
        max_value (float): Maximum intensity (255 for uint8).
    """

    def __init__(self, max_value: float = 255.0) -> None:
        if max_value <= 0:
            raise ValueError(f'max_value must be positive, got {max_value}')
        self.max_value = max_value

    def transform(self, results: dict) -> dict:
        img = results['img']
        inverted = self.max_value - img.astype(np.float32)
        results['img'] = np.clip(inverted, 0, self.max_value).astype(
            img.dtype)
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(max_value={self.max_value})'
