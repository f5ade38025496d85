"""Smooth random fields and textures used by layout and renderers.

Every function draws from the generator it is given, in a fixed order, so
outputs depend only on the generator state.
"""
import math
from typing import Tuple

import cv2
import numpy as np

__all__ = ['smooth_field', 'bandpass', 'ridges', 'fibres', 'norm_ppf']


def smooth_field(rng: np.random.Generator, h: int, w: int,
                 scale: float) -> np.ndarray:
    """Zero-mean, unit-variance random field with correlation ~``scale``.

    White noise on a coarse grid is Gaussian-smoothed and upsampled, so the
    cost hardly depends on ``scale``.

    Returns:
        np.ndarray: ``(h, w)`` float32.
    """
    step = max(1.0, scale / 4.0)
    gh = int(math.ceil(h / step)) + 6
    gw = int(math.ceil(w / step)) + 6
    small = rng.standard_normal((gh, gw), dtype=np.float32)
    small = cv2.GaussianBlur(small, (0, 0), 2.0)
    big = cv2.resize(
        small, (int(round(gw * step)), int(round(gh * step))),
        interpolation=cv2.INTER_CUBIC)
    off = int(round(3 * step))
    out = np.ascontiguousarray(big[off:off + h, off:off + w])
    out -= out.mean()
    out /= out.std() + 1e-6
    return out


def bandpass(rng: np.random.Generator, h: int, w: int, fine: float,
             coarse: float) -> np.ndarray:
    """Difference-of-Gaussians noise, unit variance, ``(h, w)`` float32."""
    noise = rng.standard_normal((h, w), dtype=np.float32)
    out = cv2.GaussianBlur(noise, (0, 0), fine)
    out -= cv2.GaussianBlur(noise, (0, 0), coarse)
    out /= out.std() + 1e-6
    return out


def ridges(field: np.ndarray, width: float) -> np.ndarray:
    """Curvy line network: ``exp(-(field / width)^2)`` (zero crossings)."""
    return np.exp(-np.square(field / width))


def fibres(rng: np.random.Generator, h: int, w: int,
           scale: float) -> Tuple[np.ndarray, np.ndarray]:
    """Wavy oriented fibre texture and its local orientation.

    Anisotropic noise is drawn in rotated coordinates ``(u, v)`` with
    ``v`` displaced by a smooth field, then sampled back with
    :func:`cv2.remap`; fibres run along iso-``v`` curves.

    Returns:
        tuple: texture ``(h, w)`` float32 (unit variance) and the fibre
        angle ``(h, w)`` float32 in radians (image x/y axes).
    """
    theta = rng.uniform(0, np.pi)
    c, s = math.cos(theta), math.sin(theta)
    disp = smooth_field(rng, h, w, 45.0) * (0.12 * scale)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    u = xx * c + yy * s
    v = yy * c - xx * s + disp
    umin, vmin = float(u.min()), float(v.min())
    sh = int(math.ceil(float(v.max()) - vmin)) + 2
    sw = int(math.ceil(float(u.max()) - umin)) + 2
    # thin fibres plus broader bundles; the noise is smooth along u, so it
    # is drawn on a grid 4x coarser in u and interpolated by the remap
    sub = 4.0
    sw = int(math.ceil(sw / sub)) + 2
    fine = rng.standard_normal((sh, sw), dtype=np.float32)
    fine = cv2.GaussianBlur(fine, (0, 0), sigmaX=0.3 * scale / sub, sigmaY=1.0)
    coarse = rng.standard_normal((sh, sw), dtype=np.float32)
    coarse = cv2.GaussianBlur(
        coarse, (0, 0), sigmaX=0.4 * scale / sub, sigmaY=3.5)
    src = fine / (fine.std() + 1e-6) + 1.2 * coarse / (coarse.std() + 1e-6)
    tex = cv2.remap(src, (u - umin) / sub, v - vmin, cv2.INTER_LINEAR)
    tex -= tex.mean()
    tex /= tex.std() + 1e-6
    gy, gx = np.gradient(disp)
    angle = np.arctan2(s - gx, c + gy).astype(np.float32)
    return tex, angle


def norm_ppf(p: float) -> float:
    """Inverse standard normal CDF (for thresholds of unit fields)."""
    from scipy.special import ndtri
    return float(ndtri(min(max(p, 1e-6), 1 - 1e-6)))
