"""Tissue layout of a tile: cellularity, tissue mask and fibres.

Smooth random fields give a *cellularity* map (epithelial nests vs.
stroma), a *tissue* mask (white space, freezing cracks) and, for H&E, a
wavy fibre texture with its local orientation.
"""
from dataclasses import dataclass
from typing import Optional

import numpy as np

from .fields import fibres, norm_ppf, ridges, smooth_field
from .spec import DomainSpec

__all__ = ['Layout', 'make_layout']


@dataclass
class Layout:
    """Smooth maps that steer placement and rendering.

    Attributes:
        cell (np.ndarray): ``(h, w)`` float32 cellularity in [0, 1]
            (1 = epithelial nest, 0 = stroma).
        tissue (np.ndarray): ``(h, w)`` float32 in [0, 1]; 0 = white space
            or crack.
        fibre (np.ndarray, optional): ``(h, w)`` float32 fibre texture (unit
            variance); H&E only.
        angle (np.ndarray, optional): ``(h, w)`` float32 local fibre angle in
            radians; H&E only.
    """

    cell: np.ndarray  # (h, w) float32 in [0, 1], cellularity
    tissue: np.ndarray  # (h, w) float32 in [0, 1], 0 = white space
    fibre: Optional[np.ndarray] = None  # (h, w) float32 texture
    angle: Optional[np.ndarray] = None  # (h, w) float32 fibre angle


def make_layout(spec: DomainSpec, h: int, w: int,
                rng: np.random.Generator) -> Layout:
    """Draw the layout maps of one tile.

    Args:
        spec (DomainSpec): Domain parameters (``cell_scale``,
            ``cell_frac``, ``background_frac``, ``crack``, ``modality``).
        h (int): Tile height.
        w (int): Tile width.
        rng (np.random.Generator): Random generator (consumed in a fixed
            order).

    Returns:
        Layout: Cellularity and tissue maps, plus fibres for H&E.
    """
    cf = smooth_field(rng, h, w, spec.cell_scale)
    cell = 1.0 / (1.0 + np.exp(-3.0 * (cf - norm_ppf(1 - spec.cell_frac))))
    cell = cell.astype(np.float32)
    tissue = np.ones((h, w), np.float32)
    if spec.background_frac > 0:
        bf = smooth_field(rng, h, w, 50.0)
        thr = norm_ppf(spec.background_frac)
        tissue = np.clip((bf - thr) * 4.0 + 0.5, 0, 1)
    if spec.crack > 0:
        cr = ridges(smooth_field(rng, h, w, 70.0), spec.crack)
        tissue *= np.clip(1.6 - 2.0 * cr, 0, 1)
    layout = Layout(cell=cell, tissue=tissue.astype(np.float32))
    if spec.modality == 'he':
        layout.fibre, layout.angle = fibres(rng, h, w, 40.0)
    return layout
