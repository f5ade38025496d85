"""Stain operations for H&E images (Beer-Lambert optical density).

One implementation for data augmentation (``HEDStainJitter``) and the stain
priors of the methods (SPROUT, CyC-PDAM). Colour deconvolution uses
Ruifrok & Johnston's (2001) stain matrix as in :mod:`skimage.color`. The
synthetic generator renders with its own per-channel illumination model
(``nucseg.datasets.synthetic.render_he``).
"""

import numpy as np
from skimage.color import hed_from_rgb, rgb_from_hed

__all__ = [
    'RUIFROK_HED', 'rgb_to_od', 'od_to_rgb', 'rgb_to_hed', 'hed_to_rgb',
    'hed_from_rgb', 'rgb_from_hed'
]

#: Ruifrok & Johnston stain vectors (rows: haematoxylin, eosin, DAB) as
#: normalised optical-density directions; identical to skimage's
#: ``rgb_from_hed``.
RUIFROK_HED = rgb_from_hed


def rgb_to_od(img: np.ndarray, background: float = 255.0) -> np.ndarray:
    """Optical density ``OD = -log10(I / I0)`` of an RGB image.

    Args:
        img (np.ndarray): ``HxWx3`` uint8 or float image in ``[0, I0]``.
        background (float): Incident light intensity ``I0``.

    Returns:
        np.ndarray: ``HxWx3`` float32 optical density (>= 0).
    """
    img = np.asarray(img, dtype=np.float32)
    return -np.log10(np.clip(img, 1.0, background) / background)


def od_to_rgb(od: np.ndarray, background: float = 255.0) -> np.ndarray:
    """Inverse of :func:`rgb_to_od`, returning ``HxWx3`` uint8."""
    rgb = background * np.power(10.0, -np.asarray(od, dtype=np.float32))
    return np.clip(rgb + 0.5, 0, 255).astype(np.uint8)


def rgb_to_hed(img: np.ndarray, background: float = 255.0) -> np.ndarray:
    """Ruifrok H&E(-DAB) colour deconvolution, ``C = OD @ pinv(M)``.

    Uses skimage's stain matrices but, unlike :func:`skimage.color.rgb2hed`,
    does not clip negative concentrations, so that :func:`hed_to_rgb` is
    its exact inverse (up to 8-bit rounding).

    Args:
        img (np.ndarray): ``HxWx3`` uint8 RGB image.
        background (float): Incident light intensity ``I0``.

    Returns:
        np.ndarray: ``HxWx3`` float32 stain concentrations (H, E, DAB) in
        optical-density units.
    """
    od = rgb_to_od(img, background)
    return (od @ hed_from_rgb.astype(np.float32)).astype(np.float32)


def hed_to_rgb(hed: np.ndarray, background: float = 255.0) -> np.ndarray:
    """Recompose RGB (``HxWx3`` uint8) from H, E, DAB concentrations."""
    od = np.asarray(hed, dtype=np.float32) @ rgb_from_hed.astype(np.float32)
    return od_to_rgb(od, background)
