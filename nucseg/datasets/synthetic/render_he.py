"""H&E renderer (Beer-Lambert).

Per-pixel haematoxylin / eosin / residual concentration maps ``C``
(``HxWx3``) are turned into optical density ``OD = C @ M`` with the
domain's stain matrix ``M`` (rows: unit OD vectors of H, E and a residual
channel orthogonal to both) and into intensity ``I = I0 * exp(-OD)``.
Nuclei carry high H with chromatin texture, darker rims, optional
nucleoli and vesicular (pale) interiors; stroma carries fibrous E,
cytoplasm a mix; red blood cells (E-dense discs) and freezing holes are
unlabelled distractors.

The natural-log form ``exp(-OD)`` with a per-channel ``I0`` and a float
result (blurred and noised before quantisation) differs from the base-10,
uint8 :func:`nucseg.utils.stain.od_to_rgb`, so that function is not used
here: the synthetic images must stay identical.
"""
import cv2
import numpy as np

from .fields import bandpass, smooth_field
from .instances import COL_KIND, COL_TONE, COL_U1, COL_U2
from .layout import Layout
from .render_common import (acquire, blur_mask, draw_discs, draw_nucleoli,
                            radial_distance)
from .spec import DomainSpec

__all__ = ['render_he']


def _stain_matrix(spec: DomainSpec, rng: np.random.Generator) -> np.ndarray:
    """``3x3`` float32 rows: unit OD vectors of H, E and a residual."""
    rows = []
    for vec in (spec.stain_h, spec.stain_e):
        v = np.asarray(vec, float)
        v = v / np.linalg.norm(v)
        v = np.clip(v + rng.normal(0, 0.3 * spec.stain_jitter, 3), 0.01, 1)
        rows.append(v / np.linalg.norm(v))
    res = np.cross(rows[0], rows[1])
    res = np.abs(res) / np.linalg.norm(res)
    rows.append(res)
    return np.asarray(rows, np.float32)


def render_he(spec: DomainSpec, inst: np.ndarray, table: np.ndarray,
              layout: Layout, rng: np.random.Generator) -> np.ndarray:
    """Render the H&E image of a cleaned instance map.

    Args:
        spec (DomainSpec): Domain parameters.
        inst (np.ndarray): ``(h, w)`` int32 instance map, ids ``1..N``.
        table (np.ndarray): ``(N + 1, 9)`` float64 instance parameters,
            row ``k`` for id ``k`` (columns ``COL_*`` of
            :mod:`.instances`).
        layout (Layout): Tissue layout of the tile.
        rng (np.random.Generator): Random generator (consumed in a fixed
            order).

    Returns:
        np.ndarray: ``(h, w, 3)`` uint8 RGB image.
    """
    h, w = inst.shape
    fg = inst > 0
    fgf = fg.astype(np.float32)
    dist, rn = radial_distance(inst, table)
    kind = table[:, COL_KIND]

    # --- nuclei: haematoxylin with chromatin, rim, vesicles, nucleoli
    lev = spec.nuc_h * np.exp(spec.nuc_h_sd * table[:, COL_TONE])
    lev = np.where(kind == 1, lev * 1.2, lev)
    lev[0] = 0
    ves = (table[:, COL_U1] < spec.vesicular_prob) & (kind == 0)
    chrom = bandpass(rng, h, w, 0.7, 2.5)
    speck = np.clip(bandpass(rng, h, w, 0.6, 1.5), 0, None)
    hn = lev.astype(np.float32)[inst]
    tex = 1.0 + spec.chromatin * (0.7 * chrom + 0.6 * speck)
    hn *= np.clip(tex, 0.3, None)
    hn *= 1.0 + spec.rim * np.exp(-(dist - 1.0) / 1.3)
    ves_px = ves.astype(np.float32)[inst]
    hn *= 1.0 - 0.5 * ves_px * np.clip(rn * 1.6, 0, 1)
    with_nucleolus = (table[:, COL_U2] < spec.nucleolus_prob) & (kind == 0)
    with_nucleolus[0] = False
    if with_nucleolus.any():
        nucleoli = draw_nucleoli(table, np.flatnonzero(with_nucleolus), h, w)
        hn += 0.8 * spec.nuc_h * nucleoli * fgf
    hn *= fgf
    hn = cv2.GaussianBlur(hn, (0, 0), 0.6)
    fg_soft = blur_mask(fg, 0.7)

    # --- tissue: stroma (fibrous E), cytoplasm (E + some H), white space
    cell, tissue = layout.cell, layout.tissue
    mottle = smooth_field(rng, h, w, 4.0)
    fib = np.clip(1.0 + spec.fibre * np.tanh(1.3 * layout.fibre), 0.15, None)
    e_t = tissue * ((1 - cell) * spec.stroma_e * fib + cell * spec.cyto_e *
                    (1 + 0.2 * mottle))
    h_t = tissue * (
        (1 - cell) * spec.stroma_h + cell * spec.cyto_h) * (1 + 0.3 * mottle)
    # red blood cells (in stroma) and freezing holes, never on nuclei
    area_units = h * w / 1e4
    not_nuc = 1.0 - np.clip(fg_soft * 2.0, 0, 1)
    if spec.rbc_density > 0:
        n = int(rng.poisson(spec.rbc_density * area_units))
        rbc = draw_discs(rng, h, w, n, (2.5, 3.8), spread=8.0, group=(2, 10))
        rbc = blur_mask(rbc, 0.7) * not_nuc * tissue
        e_t = e_t * (1 - rbc) + 1.5 * rbc
    hole_mul = np.ones((h, w), np.float32)
    if spec.hole_density > 0:
        n = int(rng.poisson(spec.hole_density * area_units))
        holes = draw_discs(rng, h, w, n, (1.5, 5.0), aspect=1.8)
        hole_mul -= 0.9 * blur_mask(holes, 0.8) * not_nuc

    # --- concentrations -> optical density -> intensity (Beer-Lambert)
    jit = np.exp(rng.normal(0, spec.stain_jitter, 2)).astype(np.float32)
    c_h = (h_t * (1 - 0.6 * fg_soft) + hn) * hole_mul * jit[0] + 0.02
    c_e = (e_t * (1 - 0.5 * fg_soft) + spec.nuc_e * fg_soft *
           tissue.clip(0.5, 1)) * hole_mul * jit[1] + 0.03
    c_r = 0.03 * smooth_field(rng, h, w, 8.0)
    conc = cv2.merge([c_h, c_e, c_r])
    # OD (h, w, 3) = C (h, w, 3) @ M (3, 3); cv2.transform applies m @ px
    od = cv2.transform(conc, np.ascontiguousarray(_stain_matrix(spec, rng).T))
    img = np.exp(np.negative(od, out=od), out=od)
    img *= np.asarray(spec.i0, np.float32)
    return acquire(img, spec, rng)
