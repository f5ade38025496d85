"""Electron-microscopy renderer; the instances are mitochondria.

Grey look: granular cytoplasm, curvy dark membranes (zero crossings of
smooth random fields), unlabelled vesicles, and mitochondria as elongated
dark bodies with a darker double-membrane rim and lighter cristae across
the long axis.
"""
import cv2
import numpy as np

from .fields import bandpass, ridges, smooth_field
from .instances import COL_CX, COL_CY, COL_THETA, COL_TONE, COL_U1, COL_U2
from .layout import Layout
from .render_common import acquire, blur_mask, draw_discs, radial_distance
from .spec import DomainSpec

__all__ = ['render_em']


def render_em(spec: DomainSpec, inst: np.ndarray, table: np.ndarray,
              layout: Layout, rng: np.random.Generator) -> np.ndarray:
    """Render the electron-microscopy image of a cleaned instance map.

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
    fgf = fg.astype(np.float32)
    dist, _ = radial_distance(inst, table)
    near = blur_mask(
        cv2.dilate(fg.astype(np.uint8), np.ones((5, 5), np.uint8)), 1.0)
    # cytoplasm: low-frequency shading + granular texture
    grey = spec.bg_level * (1 + 0.06 * smooth_field(rng, h, w, 120.0))
    grey += 14.0 * bandpass(rng, h, w, 0.9, 3.0)
    # membranes: cell borders (long curvy lines) and ER (short segments)
    cells = ridges(smooth_field(rng, h, w, 90.0), 0.05)
    cells += 0.7 * ridges(smooth_field(rng, h, w, 45.0), 0.04)
    er = ridges(smooth_field(rng, h, w, 18.0), 0.09)
    er *= np.clip(0.8 * smooth_field(rng, h, w, 40.0) + 0.2, 0, 1)
    memb = np.clip(cells + 0.8 * er, 0, 1) * (1 - near)
    grey -= spec.membrane * spec.bg_level * memb
    # vesicles: unlabelled rings with light lumen
    if spec.vesicle_density > 0:
        n = int(rng.poisson(spec.vesicle_density * h * w / 1e4))
        ves = draw_discs(rng, h, w, n, (1.8, 4.0), aspect=1.2)
        ves *= 1 - near
        ring = np.clip(blur_mask(ves, 1.0) - ves * 0.7, 0, 1)
        grey -= 0.35 * spec.bg_level * ring
        grey += 0.1 * spec.bg_level * blur_mask(ves, 0.6)
    # mitochondria: dark matrix, darker double-membrane rim, light cristae
    lo, hi = spec.fg_level
    u = 1.0 / (1.0 + np.exp(-1.2 * table[:, COL_TONE]))
    lev = (lo + (hi - lo) * u).astype(np.float32)
    cx = table[:, COL_CX].astype(np.float32)[inst]
    cy = table[:, COL_CY].astype(np.float32)[inst]
    th = table[:, COL_THETA].astype(np.float32)[inst]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    along = (xx - cx) * np.cos(th) + (yy - cy) * np.sin(th)
    period = (4.5 + 2.5 * table[:, COL_U1]).astype(np.float32)[inst]
    phase = (2 * np.pi * table[:, COL_U2]).astype(np.float32)[inst]
    wob = 1.2 * smooth_field(rng, h, w, 6.0)
    stripes = np.cos(2 * np.pi * along / period + phase + wob)
    cristae = np.clip((stripes - 0.3) / 0.7, 0, 1) * (dist > 2.5)
    mito = lev[inst] + 70.0 * cristae + 10.0 * bandpass(rng, h, w, 0.8, 2)
    mito -= 40.0 * np.exp(-(dist - 1.0) / 1.0)
    halo = np.clip(near - fgf, 0, 1)
    grey = grey + 18.0 * halo
    # soft edges: normalised convolution of the mitochondria layer
    soft = blur_mask(fg, 0.6)
    mito = cv2.GaussianBlur(mito * fgf, (0, 0), 0.6) / np.maximum(soft, 1e-3)
    grey = grey * (1 - soft) + mito * soft
    grey = acquire(grey.astype(np.float32), spec, rng)
    return np.repeat(grey[..., None], 3, axis=2)
