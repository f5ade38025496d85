"""Fluorescence (DAPI-like) renderer.

Dark background with an uneven illumination, bright dome-shaped nuclei
with speckled chromatin and a faint out-of-focus glow, Poisson (shot) plus
Gaussian (read) noise; written as grey in three equal channels or tinted
(``spec.colour``), e.g. blue for DAPI.
"""
import cv2
import numpy as np

from .fields import bandpass, smooth_field
from .instances import COL_TONE, COL_U1, COL_U2
from .layout import Layout
from .render_common import acquire, draw_nucleoli, radial_distance
from .spec import DomainSpec

__all__ = ['render_fluo']


def render_fluo(spec: DomainSpec, inst: np.ndarray, table: np.ndarray,
                layout: Layout, rng: np.random.Generator) -> np.ndarray:
    """Render the fluorescence image of a cleaned instance map.

    Args:
        spec (DomainSpec): Domain parameters.
        inst (np.ndarray): ``(h, w)`` int32 instance map, ids ``1..N``.
        table (np.ndarray): ``(N + 1, 9)`` float64 instance parameters,
            row ``k`` for id ``k`` (columns ``COL_*`` of
            :mod:`.instances`).
        layout (Layout): Tissue layout of the tile (unused).
        rng (np.random.Generator): Random generator (consumed in a fixed
            order).

    Returns:
        np.ndarray: ``(h, w, 3)`` uint8 RGB image.
    """
    h, w = inst.shape
    fg = inst > 0
    _, rn = radial_distance(inst, table)
    lo, hi = spec.fg_level
    # per-nucleus brightness: mostly spread over [lo, hi], a few very bright
    # compact (mitotic-like) nuclei
    u = 1.0 / (1.0 + np.exp(-1.2 * table[:, COL_TONE]))
    lev = lo + (hi - lo) * u
    bright = table[:, COL_U1] < 0.05
    lev = np.where(bright, np.minimum(hi * 1.4, 250.0), lev)
    lev[0] = 0
    dome = 0.55 + 0.45 * np.sqrt(rn)
    chrom = bandpass(rng, h, w, 0.8, 3.0)
    speck = np.clip(bandpass(rng, h, w, 0.6, 1.6), 0, None)
    tex = np.clip(1 + spec.chromatin * (0.6 * chrom + 0.8 * speck), 0.3, None)
    tex = np.where(bright[inst], 1.0, tex)
    sig = lev.astype(np.float32)[inst] * dome * tex * fg
    with_nucleolus = (table[:, COL_U2] < spec.nucleolus_prob) & ~bright
    with_nucleolus[0] = False
    if with_nucleolus.any():
        # nucleoli exclude DNA: dim spots in DAPI-like images
        nucleoli = draw_nucleoli(table, np.flatnonzero(with_nucleolus), h, w)
        sig *= 1 - 0.4 * nucleoli
    sig = cv2.GaussianBlur(sig, (0, 0), 0.6)
    glow = cv2.GaussianBlur(sig, (0, 0), 6.0) * 0.12
    illum = 1.0 + 0.25 * smooth_field(rng, h, w, 150.0)
    bg = spec.bg_level * np.clip(illum, 0.4, None)
    grey = (bg + sig + glow).astype(np.float32)
    grey = acquire(grey, spec, rng).astype(np.float32)
    colour = np.asarray(spec.colour, np.float32)
    img = grey[..., None] * colour
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)
