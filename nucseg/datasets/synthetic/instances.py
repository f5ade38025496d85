"""Instance shapes, their placement and the clean-up of the label map.

Star-convex shapes (an ellipse with random low-order Fourier perturbations
of its radius) are placed one after another, preferring cellular regions
and, with some probability, right next to an earlier instance so that
nuclei touch or overlap. A later instance occludes the earlier ones (the
label map keeps the top one); candidates that would hide more than
``max_overlap`` of an instance are rejected. Stromal nuclei may be
spindle-shaped and aligned with the fibres.

Clean-up keeps each instance's largest 4-connected piece, removes
instances smaller than ``min_area`` pixels and renumbers ids ``1..N``.

Every instance is described by one row of a parameter table; the
``COL_*`` constants name its columns.
"""
import math
from typing import Tuple

import cv2
import numpy as np
from skimage.measure import label as cc_label

from .layout import Layout
from .spec import DomainSpec

__all__ = [
    'COL_CX', 'COL_CY', 'COL_R', 'COL_ASP', 'COL_THETA', 'COL_KIND',
    'COL_TONE', 'COL_U1', 'COL_U2', 'star_polygons', 'place_instances',
    'clean_labels'
]

# Columns of the per-instance parameter table ``(N + 1, 9)`` float64: centre
# x / y, equivalent radius, aspect ratio, angle, kind (0 round, 1 spindle),
# tone (a standard normal for the per-instance intensity) and two uniforms.
(COL_CX, COL_CY, COL_R, COL_ASP, COL_THETA, COL_KIND, COL_TONE, COL_U1,
 COL_U2) = range(9)

_NV = 32
_PHI = np.linspace(0.0, 2 * np.pi, _NV, endpoint=False)
_COS, _SIN = np.cos(_PHI), np.sin(_PHI)
_HARM = np.arange(2, 6)  # Fourier orders of the radius perturbation
_COS_M = np.cos(_HARM[:, None] * _PHI)
_SIN_M = np.sin(_HARM[:, None] * _PHI)
_BATCH = 64  # candidates drawn per block of random numbers


def star_polygons(r: np.ndarray, asp: np.ndarray, irregularity: float,
                  bend: np.ndarray, z: np.ndarray,
                  u: np.ndarray) -> np.ndarray:
    """Unrotated vertices ``(B, 32, 2)`` of perturbed ellipses around 0.

    The radius of an ellipse with semi-axes ``r * sqrt(asp)`` (along x)
    and ``r / sqrt(asp)`` is multiplied by ``1 + sum_m a_m cos(m phi +
    p_m)`` (``m = 2..5``, ``a_m = irregularity * z_m / m^0.7``, clipped to
    [0.6, 1.4]); ``bend`` curves the shape along its major axis
    (bean-like). ``z`` ``(B, 4)`` normals and ``u`` ``(B, 4)`` uniforms
    carry the randomness.
    """
    a = (r * np.sqrt(asp))[:, None]
    b = (r / np.sqrt(asp))[:, None]
    rho = a * b / np.sqrt((b * _COS)**2 + (a * _SIN)**2)
    if irregularity > 0:
        amp = irregularity * z / _HARM**0.7
        pha = 2 * np.pi * u
        pert = (1.0 + (amp * np.cos(pha)) @ _COS_M -
                (amp * np.sin(pha)) @ _SIN_M)
        rho = rho * np.clip(pert, 0.6, 1.4)
    x = rho * _COS
    y = rho * _SIN
    y = y + bend[:, None] * (x * x / a - 0.5 * a)
    return np.stack([x, y], axis=-1)


def place_instances(spec: DomainSpec, h: int, w: int, rng: np.random.Generator,
                    layout: Layout) -> Tuple[np.ndarray, np.ndarray]:
    """Place star-convex instances one by one with occlusion.

    Shapes are drawn in vectorised blocks of ``_BATCH`` candidates; each
    candidate is then positioned (uniformly or next to an earlier
    instance), accepted with a probability given by the cellularity and
    tissue maps, rasterised and checked against ``max_overlap``.

    Returns:
        tuple: raw instance map ``(h, w)`` int32 (ids in paint order, not
        yet cleaned) and a parameter table ``(N + 1, 9)`` float64 whose
        row ``k`` describes id ``k`` (row 0: background, aspect 1).
    """
    inst = np.zeros((h, w), np.int32)
    r_lo, r_hi = spec.radius
    mean_area = np.pi * (r_lo**2 + r_lo * r_hi + r_hi**2) / 3.0
    n_target = int(rng.poisson(spec.coverage * h * w / mean_area))
    margin = 0.5 * r_hi
    rows = [(0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 1.0)]
    areas = [0]
    max_tries = 4 * n_target + 20
    shift = 4
    scale = float(1 << shift)
    gap_lo, gap_hi = spec.cluster_gap
    cell_map, tissue_map = layout.cell, layout.tissue
    for start in range(0, max_tries, _BATCH):
        if len(rows) - 1 >= n_target:
            break
        nb_ = min(_BATCH, max_tries - start)
        u = rng.random((nb_, 18))
        z = rng.standard_normal((nb_, 10))
        r = r_lo + (r_hi - r_lo) * u[:, 0]
        asp = spec.aspect[0] + np.diff(spec.aspect)[0] * u[:, 9]
        r_sp = r * (0.75 + 0.2 * u[:, 9])
        asp_sp = spec.spindle_aspect[0] + np.diff(
            spec.spindle_aspect)[0] * u[:, 9]
        bend = spec.bend * (2 * u[:, 10] - 1)
        shapes = star_polygons(r, asp, spec.irregularity, bend, z[:, :4],
                               u[:, 11:15])
        spindles = None
        if spec.spindle_frac > 0:
            spindles = star_polygons(r_sp, asp_sp, 0.5 * spec.irregularity,
                                     bend, z[:, :4], u[:, 11:15])
        for k in range(nb_):
            if len(rows) - 1 >= n_target:
                break
            uk = u[k]
            if len(rows) > 1 and uk[1] < spec.cluster_prob:
                nb = rows[1 + int(uk[2] * (len(rows) - 1))]
                ang = 2 * np.pi * uk[3]
                dist = (gap_lo + (gap_hi - gap_lo) * uk[4]) * (
                    nb[COL_R] + r[k])
                cx = nb[COL_CX] + dist * math.cos(ang)
                cy = nb[COL_CY] + dist * math.sin(ang)
            else:
                cx = -margin + (w + 2 * margin) * uk[5]
                cy = -margin + (h + 2 * margin) * uk[6]
            ix = min(max(int(cx), 0), w - 1)
            iy = min(max(int(cy), 0), h - 1)
            cellv = float(cell_map[iy, ix])
            tis = float(tissue_map[iy, ix])
            accept = tis * (1.0 - spec.cell_contrast +
                            spec.cell_contrast * cellv)
            if tis < 0.5 or uk[7] >= accept:
                continue
            if spindles is not None and uk[8] < spec.spindle_frac * (1.0 -
                                                                     cellv):
                kind, rk, ak, base = 1, r_sp[k], asp_sp[k], spindles[k]
                theta = float(layout.angle[iy, ix]) + 0.15 * z[k, 4]
            else:
                kind, rk, ak, base = 0, r[k], asp[k], shapes[k]
                theta = np.pi * uk[15]
            ct, st = math.cos(theta), math.sin(theta)
            poly = base @ np.array([[ct, st], [-st, ct]])
            pmin = poly.min(0)
            pmax = poly.max(0)
            x0 = int(math.floor(cx + pmin[0])) - 1
            y0 = int(math.floor(cy + pmin[1])) - 1
            x1 = int(math.ceil(cx + pmax[0])) + 2
            y1 = int(math.ceil(cy + pmax[1])) + 2
            # clip to the image
            cx0, cy0 = max(x0, 0), max(y0, 0)
            cx1, cy1 = min(x1, w), min(y1, h)
            if cx1 - cx0 < 2 or cy1 - cy0 < 2:
                continue
            mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
            pts = ((poly + (cx - x0, cy - y0)) * scale + 0.5).astype(np.int32)
            cv2.fillPoly(mask, [pts], 1, lineType=cv2.LINE_8, shift=shift)
            sub = mask[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0].view(bool)
            area = int(np.count_nonzero(sub))
            if area < spec.min_area:
                continue
            region = inst[cy0:cy1, cx0:cx1]
            covered = region[sub]
            covered = covered[covered > 0]
            if covered.size:
                if covered.size > spec.max_overlap * area:
                    continue
                ids, counts = np.unique(covered, return_counts=True)
                pairs = list(zip(ids.tolist(), counts.tolist()))
                if any(c > spec.max_overlap * areas[i] for i, c in pairs):
                    continue
                for i, c in pairs:
                    areas[i] -= c
            region[sub] = len(rows)
            areas.append(area)
            rows.append((cx, cy, rk, ak, theta, kind, z[k, 5], uk[16], uk[17]))
    return inst, np.asarray(rows, dtype=np.float64)


def clean_labels(inst: np.ndarray,
                 min_area: int) -> Tuple[np.ndarray, np.ndarray]:
    """Keep each id's largest 4-connected piece, drop small ids, renumber.

    Returns:
        tuple: cleaned map ``(h, w)`` int32 with ids ``1..N`` (kept in paint
        order) and ``old_ids`` ``(N + 1,)`` int64 with ``old_ids[new] =
        old`` (``old_ids[0] = 0``).
    """
    comp, ncomp = cc_label(inst, background=0, connectivity=1, return_num=True)
    if ncomp == 0:
        return np.zeros_like(inst, dtype=np.int32), np.zeros(1, np.int64)
    comp_area = np.bincount(comp.ravel(), minlength=ncomp + 1)
    parent = np.zeros(ncomp + 1, np.int64)
    parent[comp.ravel()] = inst.ravel()
    cand = np.arange(1, ncomp + 1)
    # largest piece first, then one piece per parent id
    order = cand[np.lexsort((-comp_area[cand], parent[cand]))]
    _, first = np.unique(parent[order], return_index=True)
    best = order[first]
    best = best[comp_area[best] >= min_area]
    best = best[np.argsort(parent[best], kind='stable')]
    lut = np.zeros(ncomp + 1, np.int32)
    lut[best] = np.arange(1, best.size + 1, dtype=np.int32)
    old_ids = np.concatenate([[0], parent[best]]).astype(np.int64)
    return lut[comp], old_ids
