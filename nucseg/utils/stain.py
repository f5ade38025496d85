"""Stain operations for H&E images (Beer-Lambert optical density).

One implementation for data augmentation (``HEDStainJitter``) and the stain
priors of the methods (SPROUT, CyC-PDAM): :func:`stain_concentrations`
(``S = pinv(Q) OD``) and :func:`stain_priors` (Otsu and high-confidence
self-reference masks). Colour deconvolution uses
Ruifrok & Johnston's (2001) stain matrix as in :mod:`skimage.color`. The
synthetic generator renders with its own per-channel illumination model
(``nucseg.datasets.synthetic.render_he``).
"""

from dataclasses import dataclass
from typing import Optional, Union

import numpy as np
from scipy import ndimage as ndi
from skimage.color import hed_from_rgb, rgb_from_hed
from skimage.filters import threshold_otsu

__all__ = [
    'RUIFROK_HED', 'rgb_to_od', 'od_to_rgb', 'rgb_to_hed', 'hed_to_rgb',
    'hed_from_rgb', 'rgb_from_hed', 'HE_STAIN_MATRIX', 'he_matrix',
    'stain_concentrations', 'StainPriors', 'stain_priors',
    'macenko_stain_matrix'
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


# ---------------------------------------------------------------------------
# Stain concentrations and stain priors (SPROUT, Sec. 3.1)
# ---------------------------------------------------------------------------

#: The paper's normalised H&E stain matrix ``Q = [Q_H, Q_E]`` (3x2, the
#: optical-density directions of haematoxylin and eosin as columns);
#: Ruifrok & Johnston's vectors, i.e. the first two rows of
#: :data:`RUIFROK_HED`, each scaled to unit length.
HE_STAIN_MATRIX = np.ascontiguousarray(
    (RUIFROK_HED[:2] /
     np.linalg.norm(RUIFROK_HED[:2], axis=1, keepdims=True)).T)


def he_matrix(stain_matrix: Optional[np.ndarray] = None) -> np.ndarray:
    """Checked 3x2 float64 H&E matrix with unit-norm columns.

    Args:
        stain_matrix (np.ndarray, optional): ``3x2`` (stain vectors as
            columns) or ``2x3`` (as rows); ``None`` gives
            :data:`HE_STAIN_MATRIX`.

    Returns:
        np.ndarray: ``Q`` (3x2).
    """
    if stain_matrix is None:
        q = HE_STAIN_MATRIX.astype(np.float64)
    else:
        q = np.asarray(stain_matrix, dtype=np.float64)
        if q.shape == (2, 3):  # stain vectors as rows (skimage layout)
            q = q.T
        if q.shape != (3, 2):
            raise ValueError('stain_matrix must be 3x2 (H and E optical-'
                             'density vectors as columns) or 2x3 (as rows),'
                             f' got shape {q.shape}')
        if not np.isfinite(q).all():
            raise ValueError('stain_matrix contains NaN or inf')
    norms = np.linalg.norm(q, axis=0)
    if (norms <= 0).any():
        raise ValueError('stain_matrix has a zero stain vector')
    q = q / norms
    if np.linalg.matrix_rank(q) < 2:
        raise ValueError('stain_matrix: the H and E vectors are parallel')
    return q


def macenko_stain_matrix(img: np.ndarray,
                         alpha: float = 1.0,
                         beta: float = 0.15,
                         max_pixels: int = 200000,
                         background: float = 255.0,
                         seed: int = 0) -> np.ndarray:
    """Per-image H&E stain vectors by Macenko et al. (ISBI 2009).

    Optical densities above ``beta`` (tissue) are projected onto the plane
    of their two main principal directions; the stain vectors are the
    directions at the ``alpha`` and ``100 - alpha`` percentiles of the
    projected angle. Haematoxylin is the one absorbing more red.

    Args:
        img (np.ndarray): ``HxWx3`` RGB image, uint8 or float in ``[0, I0]``.
        alpha (float): Angle percentile (robust extremes).
        beta (float): OD threshold of tissue pixels (in every channel).
        max_pixels (int): Random subsample of tissue pixels (seeded).
        background (float): Incident light intensity ``I0``.
        seed (int): Subsampling seed.

    Returns:
        np.ndarray: ``3x2`` unit-norm ``[H, E]`` matrix; Ruifrok's
        :data:`HE_STAIN_MATRIX` when the image has too little tissue
        (fewer than 100 pixels above ``beta``) or the estimate degenerates.
    """
    img = np.asarray(img)
    if img.ndim != 3 or img.shape[-1] != 3:
        raise ValueError(f'img must be HxWx3 RGB, got shape {img.shape}')
    od = rgb_to_od(img, background).reshape(-1, 3).astype(np.float64)
    od = od[(od > beta).all(axis=1)]
    if len(od) < 100:
        return HE_STAIN_MATRIX.astype(np.float64)
    if len(od) > max_pixels:
        od = od[np.random.default_rng(seed).choice(
            len(od), max_pixels, replace=False)]
    _, vecs = np.linalg.eigh(np.cov(od.T))
    plane = vecs[:, [1, 2]]  # two largest eigenvalues
    plane = plane * np.sign(plane[0] + (plane[0] == 0))  # positive red
    proj = od @ plane
    phi = np.arctan2(proj[:, 1], proj[:, 0])
    lo, hi = np.percentile(phi, [alpha, 100 - alpha])
    a = plane @ np.array([np.cos(lo), np.sin(lo)])
    b = plane @ np.array([np.cos(hi), np.sin(hi)])
    h_vec, e_vec = (a, b) if a[0] > b[0] else (b, a)
    q = np.stack([h_vec, e_vec], axis=1)
    q = q / np.linalg.norm(q, axis=0)
    if (not np.isfinite(q).all() or (q < -1e-6).any()
            or np.linalg.matrix_rank(q) < 2):
        return HE_STAIN_MATRIX.astype(np.float64)
    return q


def stain_concentrations(img: np.ndarray,
                         stain_matrix: Optional[np.ndarray] = None,
                         background: float = 255.0) -> np.ndarray:
    """Haematoxylin and eosin concentrations ``S = pinv(Q) . OD``.

    Beer-Lambert: ``OD = -log10(I / I0) = Q S``; the least-squares solution
    with the pseudo-inverse of the 3x2 matrix ``Q`` (SPROUT Sec. 3.1). Unlike
    :func:`rgb_to_hed` (3x3 inverse with DAB) only H and E are modelled, so
    residual absorbance outside their plane is dropped rather than assigned
    to a third stain. Concentrations are in decadic optical-density units
    and are not clipped (they may be slightly negative).

    Args:
        img (np.ndarray): ``HxWx3`` RGB image, uint8 or float in ``[0, I0]``.
        stain_matrix (np.ndarray, optional): ``3x2`` (stain vectors as
            columns) or ``2x3`` (as rows); columns are normalised. Defaults
            to Ruifrok's H&E vectors (:data:`HE_STAIN_MATRIX`).
        background (float): Incident light intensity ``I0``.

    Returns:
        np.ndarray: ``HxWx2`` float32 concentrations ``(S_H, S_E)``.
    """
    img = np.asarray(img)
    if img.ndim != 3 or img.shape[-1] != 3:
        raise ValueError(f'img must be HxWx3 RGB, got shape {img.shape}')
    q_pinv = np.linalg.pinv(he_matrix(stain_matrix))  # 2x3
    od = rgb_to_od(img, background)
    return (od @ q_pinv.T.astype(np.float32)).astype(np.float32)


@dataclass
class StainPriors:
    """Stain-prior self-reference masks of one image (SPROUT Sec. 3.1).

    Attributes:
        h (np.ndarray): ``HxW`` float32 haematoxylin concentration.
        threshold (float): Otsu threshold of ``h``.
        coarse_fg (np.ndarray): ``HxW`` bool, ``h > threshold``.
        fg_ref (np.ndarray): ``HxW`` bool high-confidence foreground: the
            ``top_t`` fraction of ``coarse_fg`` pixels with the highest H.
        bg_ref (np.ndarray): ``HxW`` bool high-confidence background: the
            ``top_t`` fraction of the coarse background with the lowest H.
        fg_cutoff (float): Smallest H kept in ``fg_ref`` (``inf`` if empty).
        bg_cutoff (float): Largest H kept in ``bg_ref`` (``-inf`` if empty).
        top_t (float): The fraction used.
    """

    h: np.ndarray
    threshold: float
    coarse_fg: np.ndarray
    fg_ref: np.ndarray
    bg_ref: np.ndarray
    fg_cutoff: float
    bg_cutoff: float
    top_t: float

    @property
    def coarse_fraction(self) -> float:
        """Fraction of pixels in the coarse (Otsu) foreground."""
        return float(self.coarse_fg.mean()) if self.coarse_fg.size else 0.


def _top_fraction_cutoff(values: np.ndarray, fraction: float) -> float:
    """Value of rank ``max(1, floor(fraction * n))`` from the top."""
    n_keep = max(1, int(np.floor(fraction * values.size)))
    kth = values.size - n_keep
    return float(np.partition(values, kth)[kth])


def stain_priors(img: np.ndarray,
                 top_t: float = 0.6,
                 stain_matrix: Union[np.ndarray, str, None] = None,
                 smooth_sigma: float = 0.0,
                 h_sigma: float = 0.0,
                 background: float = 255.0) -> StainPriors:
    """Coarse and high-confidence fg/bg masks from the H concentration.

    SPROUT (Sec. 3.1): ``S = pinv(Q) OD``; Otsu's threshold on ``S_H``
    splits coarse foreground (``S_H > t*``) and background; "within each
    region, pixels with the top t stain intensities are selected". Reading
    (as in the authors' code, ``keep_ratio``): ``top_t`` is a *fraction of
    the region's pixels* ranked by H -- the foreground reference keeps the
    ``floor(top_t * n_fg)`` coarse-foreground pixels with the highest H, the
    background reference the ``floor(top_t * n_bg)`` coarse-background
    pixels with the lowest H (at least one pixel each; ties at the cutoff
    are all kept). ``top_t = 1`` returns the Otsu masks themselves.

    Not reproduced from the authors' code (callers may add them): its
    white-area multi-Otsu branch and the morphological clean-up of the
    references (thin-line removal, objects/holes < 40 px).

    Args:
        img (np.ndarray): ``HxWx3`` RGB image, uint8 or float in ``[0, I0]``.
        top_t (float): Fraction in ``(0, 1]`` kept in each reference.
        stain_matrix (np.ndarray | str, optional): See
            :func:`stain_concentrations`; ``'macenko'`` estimates it per
            image (:func:`macenko_stain_matrix`).
        smooth_sigma (float): Gaussian sigma (pixels) applied to the RGB
            image before deconvolution; 0 disables (the authors' code blurs
            with a 7x7 Gaussian, sigma ~1.4).
        h_sigma (float): Gaussian sigma (pixels) applied to the H map
            after deconvolution; 0 disables.
        background (float): Incident light intensity ``I0``.

    Returns:
        StainPriors: H map, Otsu threshold, coarse and reference masks.
    """
    if not 0.0 < top_t <= 1.0:
        raise ValueError(f'top_t must be in (0, 1], got {top_t}')
    if smooth_sigma < 0 or h_sigma < 0:
        raise ValueError('smooth_sigma and h_sigma must be >= 0, got '
                         f'{smooth_sigma}, {h_sigma}')
    img = np.asarray(img)
    if isinstance(stain_matrix, str):
        if stain_matrix != 'macenko':
            raise ValueError("stain_matrix must be an array, None or "
                             f"'macenko', got {stain_matrix!r}")
        stain_matrix = macenko_stain_matrix(img, background=background)
    if smooth_sigma > 0:
        img = ndi.gaussian_filter(
            img.astype(np.float32), (smooth_sigma, smooth_sigma, 0))
    h = stain_concentrations(img, stain_matrix, background)[..., 0]
    if h_sigma > 0:
        h = ndi.gaussian_filter(h, h_sigma)
    if h.size == 0:
        raise ValueError('img is empty')
    if not np.isfinite(h).all():
        raise ValueError('img contains NaN or inf')
    if h.max() > h.min():
        thr = float(threshold_otsu(h))
    else:  # constant image: everything is background
        thr = float(h.max())
    coarse_fg = h > thr
    fg_vals, bg_vals = h[coarse_fg], h[~coarse_fg]
    fg_ref = np.zeros_like(coarse_fg)
    bg_ref = np.zeros_like(coarse_fg)
    fg_cut, bg_cut = float('inf'), float('-inf')
    if fg_vals.size:
        fg_cut = _top_fraction_cutoff(fg_vals, top_t)
        fg_ref = coarse_fg & (h >= fg_cut)
    if bg_vals.size:
        bg_cut = -_top_fraction_cutoff(-bg_vals, top_t)
        bg_ref = ~coarse_fg & (h <= bg_cut)
    return StainPriors(
        h=h, threshold=thr, coarse_fg=coarse_fg, fg_ref=fg_ref,
        bg_ref=bg_ref, fg_cutoff=fg_cut, bg_cutoff=bg_cut, top_t=top_t)
