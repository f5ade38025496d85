"""Positive and negative point prompts from binary masks (SPROUT Sec. 3.2).

* Positive points (:func:`positive_points`): centroids of the regions of a
  distance-transform watershed of the foreground (App. B.6): peaks of the
  Euclidean distance transform at least ``min_distance`` (5) pixels apart
  are the markers, the watershed of the negative distance splits the
  foreground into one region per marker, and each region's centroid is one
  point. Centroids from several masks (SPROUT uses the stain-prior
  reference and the POT-Scan mask) are pooled and points closer than
  ``merge_distance`` (10) pixels are merged (:func:`merge_points`).
* Negative points (:func:`negative_points`): one point per ``grid x grid``
  (24) cell of the *expanded background* that contains background.
  :func:`expanded_background` builds that mask from a foreground mask as in
  the authors' code: the complement of the hole-filled foreground, where
  the foreground is the activation mask obtained with an *expanded*
  transport mass (``rho* + 2 delta rho``, i.e. more generous than the one
  used for the positives), optionally grown by a safety ``margin``.
* :func:`nearest_negatives`: the ``k`` (2) negatives nearest to each
  positive, which SPROUT feeds to SAM together with that positive
  (Sec. 3.3).

All points are ``N x 2`` float32 arrays of ``(x, y)`` pixel coordinates
(column, row; SAM's convention, pixel centres at integers).
"""
from typing import Optional, Sequence, Tuple, Union

import numpy as np
from scipy import ndimage as ndi
from scipy.spatial import cKDTree
from skimage.feature import peak_local_max
from skimage.segmentation import watershed

from nucseg.utils.morphology import h_maxima

__all__ = [
    'check_points', 'watershed_centroids', 'distance_maxima_points',
    'merge_points', 'positive_points',
    'expanded_background', 'negative_points', 'nearest_negatives'
]

MaskOrMasks = Union[np.ndarray, Sequence[np.ndarray]]


def _check_mask(mask: np.ndarray, name: str) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f'{name} must be a 2-D HxW mask, got shape '
                         f'{mask.shape}')
    return mask.astype(bool)


def check_points(points: Optional[np.ndarray], name: str,
                 dtype=np.float32) -> np.ndarray:
    """Validate an ``N x 2`` array of ``(x, y)`` points.

    ``None`` and empty inputs give a ``0 x 2`` array; anything that is not
    ``N x 2`` or holds NaN/inf raises a ``ValueError`` naming ``name``.
    """
    if points is None:
        return np.zeros((0, 2), dtype)
    points = np.asarray(points, dtype=dtype)
    if points.size == 0:
        return np.zeros((0, 2), dtype)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f'{name} must be an N x 2 array of (x, y), got '
                         f'shape {points.shape}')
    if not np.isfinite(points).all():
        raise ValueError(f'{name} contains NaN or inf')
    return points


def watershed_centroids(fg_mask: np.ndarray,
                        min_distance: int = 5) -> np.ndarray:
    """Centroids of the distance-transform watershed regions of a mask.

    Markers are the local maxima of the Euclidean distance transform at
    least ``min_distance`` pixels apart (also at the image border; as in the
    authors' code, peaks of neighbouring components also suppress each
    other); a connected component left without a peak gets its
    maximum-distance pixel as marker, so every component yields at least
    one region.

    Args:
        fg_mask (np.ndarray): ``HxW`` foreground mask.
        min_distance (int): Minimal distance between markers (pixels).

    Returns:
        np.ndarray: ``N x 2`` float32 ``(x, y)`` centroids, one per region,
        ordered by region (marker) index.
    """
    fg = _check_mask(fg_mask, 'fg_mask')
    if min_distance < 1:
        raise ValueError(f'min_distance must be >= 1, got {min_distance}')
    if not fg.any():
        return np.zeros((0, 2), np.float32)
    dist = ndi.distance_transform_edt(fg)
    comps, n_comp = ndi.label(fg)
    peaks = peak_local_max(
        dist, min_distance=int(min_distance), exclude_border=False)
    markers = np.zeros(fg.shape, np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    missing = np.setdiff1d(np.arange(1, n_comp + 1), comps[tuple(peaks.T)])
    if missing.size:
        extra = ndi.maximum_position(dist, comps, missing)
        for i, pos in enumerate(extra, start=len(peaks) + 1):
            markers[pos] = i
    regions = watershed(-dist, markers, mask=fg)
    n = int(regions.max())
    rows, cols = np.nonzero(regions)
    lab = regions[rows, cols]
    count = np.bincount(lab, minlength=n + 1)[1:]
    cx = np.bincount(lab, weights=cols, minlength=n + 1)[1:] / count
    cy = np.bincount(lab, weights=rows, minlength=n + 1)[1:] / count
    return np.stack([cx, cy], axis=1).astype(np.float32)


def distance_maxima_points(fg_mask: np.ndarray,
                           h: float = 0.25,
                           sigma: float = 2.0) -> np.ndarray:
    """Positive points at the h-maxima of the smoothed distance transform.

    A variant of :func:`watershed_centroids` for weight-free SPROUT: the
    Euclidean distance transform of the foreground is smoothed with a
    Gaussian (``sigma`` px) and every regional maximum rising at least
    ``h`` px above its surroundings (scikit-image's h-maxima, computed by
    :func:`nucseg.utils.morphology.h_maxima`) gives one point (the
    centroid of the maximum's plateau, snapped into the foreground).
    Compared with peaks at a minimum distance, the height criterion does
    not split elongated nuclei and still separates touching ones whose
    neck is narrower than their bodies. Components without a maximum get
    none (the mask stage may keep them unseeded).

    Args:
        fg_mask (np.ndarray): ``HxW`` foreground mask.
        h (float): Minimal height of a maximum (pixels of distance).
        sigma (float): Gaussian sigma of the distance transform; 0 keeps
            it raw.

    Returns:
        np.ndarray: ``N x 2`` float32 ``(x, y)`` points.
    """
    fg = _check_mask(fg_mask, 'fg_mask')
    if h <= 0 or sigma < 0:
        raise ValueError(f'need h > 0 and sigma >= 0, got h={h}, '
                         f'sigma={sigma}')
    if not fg.any():
        return np.zeros((0, 2), np.float32)
    dist = ndi.distance_transform_edt(fg)
    if sigma > 0:
        dist = ndi.gaussian_filter(dist, sigma)
    peaks, n = ndi.label(h_maxima(dist, h) & fg)
    if n == 0:
        return np.zeros((0, 2), np.float32)
    cy, cx = np.asarray(ndi.center_of_mass(fg, peaks, range(1, n + 1))).T
    pts = np.stack([cx, cy], axis=1).astype(np.float32)
    return _snap_to_mask(pts, fg)


def merge_points(points: np.ndarray, distance: float = 10.0) -> np.ndarray:
    """Merge points closer than ``distance`` into their mean.

    Greedy, in input order: the first unassigned point and every unassigned
    point within ``distance`` of it (Euclidean, inclusive) are replaced by
    their mean. Not transitive, so a chain of close points does not
    collapse into one.

    Args:
        points (np.ndarray): ``N x 2`` ``(x, y)`` points.
        distance (float): Merge radius in pixels; ``<= 0`` disables.

    Returns:
        np.ndarray: ``M x 2`` float32 points, ``M <= N``.
    """
    points = check_points(points, 'points')
    if len(points) < 2 or distance <= 0:
        return points.copy()
    tree = cKDTree(points)
    groups = tree.query_ball_point(points, r=float(distance))
    taken = np.zeros(len(points), bool)
    merged = []
    for i, group in enumerate(groups):
        if taken[i]:
            continue
        group = [j for j in group if not taken[j]]
        taken[group] = True
        merged.append(points[group].mean(0))
    return np.asarray(merged, dtype=np.float32)


def _snap_to_mask(points: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Move points whose pixel is outside ``mask`` to the nearest inside."""
    if not len(points) or not mask.any():
        return points
    h, w = mask.shape
    r = np.clip(np.rint(points[:, 1]).astype(int), 0, h - 1)
    c = np.clip(np.rint(points[:, 0]).astype(int), 0, w - 1)
    out = ~mask[r, c]
    if out.any():
        _, (ir, ic) = ndi.distance_transform_edt(~mask, return_indices=True)
        points = points.copy()
        points[out, 0] = ic[r[out], c[out]]
        points[out, 1] = ir[r[out], c[out]]
    return points


def positive_points(fg_masks: MaskOrMasks,
                    min_distance: int = 5,
                    merge_distance: float = 10.0,
                    snap_to_mask: bool = True) -> np.ndarray:
    """Positive prompts: merged watershed-region centroids.

    Args:
        fg_masks (np.ndarray | Sequence[np.ndarray]): One ``HxW`` mask or
            several of the same size; the centroids of all are pooled
            before merging (SPROUT: the stain-prior reference and the
            POT-Scan foreground).
        min_distance (int): Minimal marker distance of the watershed.
        merge_distance (float): Points closer than this are merged
            (:func:`merge_points`).
        snap_to_mask (bool): Move a point that falls outside the union of
            the masks (centroid of a non-convex region, or mean of two
            merged points) to the nearest foreground pixel. Not in the
            paper; a no-op for convex regions.

    Returns:
        np.ndarray: ``N x 2`` float32 ``(x, y)`` points.
    """
    if isinstance(fg_masks, np.ndarray) and fg_masks.ndim == 2:
        fg_masks = [fg_masks]
    masks = [_check_mask(m, f'fg_masks[{i}]') for i, m in enumerate(fg_masks)]
    if not masks:
        raise ValueError('fg_masks is empty')
    if len({m.shape for m in masks}) > 1:
        raise ValueError('fg_masks differ in shape: '
                         f'{[m.shape for m in masks]}')
    pts = np.concatenate(
        [watershed_centroids(m, min_distance) for m in masks])
    pts = merge_points(pts, merge_distance)
    if snap_to_mask:
        pts = _snap_to_mask(pts, np.logical_or.reduce(masks))
    return pts.astype(np.float32)


def expanded_background(fg_mask: np.ndarray,
                        fill_holes: bool = True,
                        margin: float = 0) -> np.ndarray:
    """Background mask for negative prompts from an expanded foreground.

    ``~fill_holes(dilate(fg, margin))``: pixels enclosed by foreground count
    as foreground, and ``margin`` > 0 keeps the background more than
    ``margin`` pixels (Euclidean distance) away from the foreground.

    Args:
        fg_mask (np.ndarray): ``HxW`` (expanded) foreground mask.
        fill_holes (bool): Fill holes of the foreground first.
        margin (float): Dilation radius of the foreground in pixels.

    Returns:
        np.ndarray: ``HxW`` bool background mask.
    """
    fg = _check_mask(fg_mask, 'fg_mask')
    if margin < 0:
        raise ValueError(f'margin must be >= 0, got {margin}')
    if margin and fg.any():
        fg = ndi.distance_transform_edt(~fg) <= margin
    if fill_holes:
        fg = ndi.binary_fill_holes(fg)
    return ~fg


def negative_points(bg_mask: np.ndarray,
                    grid: int = 24,
                    mode: str = 'random',
                    seed: Optional[int] = 0) -> np.ndarray:
    """Negative prompts: one background pixel per ``grid x grid`` cell.

    Cells tile the image from the top-left corner (the last row/column of
    cells may be smaller); cells without background get no point.

    Args:
        bg_mask (np.ndarray): ``HxW`` background mask, e.g. from
            :func:`expanded_background`.
        grid (int): Cell side in pixels.
        mode (str): ``'random'``: a uniformly random background pixel of the
            cell (the authors' choice); ``'center'``: the background pixel
            nearest to the cell centre (deterministic).
        seed (int, optional): Seed of ``'random'``.

    Returns:
        np.ndarray: ``N x 2`` float32 ``(x, y)`` integer pixel positions, in
        row-major cell order.
    """
    bg = _check_mask(bg_mask, 'bg_mask')
    if grid < 1:
        raise ValueError(f'grid must be >= 1, got {grid}')
    if mode not in ('random', 'center'):
        raise ValueError(f"mode must be 'random' or 'center', got {mode!r}")
    if not bg.any():
        return np.zeros((0, 2), np.float32)
    h, w = bg.shape
    nr, nc = -(-h // grid), -(-w // grid)
    # Cells as the last axis: (nr, nc, grid * grid), padding is not bg.
    padded = np.zeros((nr * grid, nc * grid), bool)
    padded[:h, :w] = bg
    cells = padded.reshape(nr, grid, nc, grid).transpose(0, 2, 1, 3)
    cells = cells.reshape(nr, nc, grid * grid)
    off_r, off_c = np.divmod(np.arange(grid * grid), grid)
    if mode == 'random':
        score = np.random.default_rng(seed).random(cells.shape)
    else:
        # Centre of each (possibly truncated) cell, relative to its origin.
        yc = (np.minimum((np.arange(nr) + 1) * grid, h) -
              np.arange(nr) * grid - 1) / 2.0
        xc = (np.minimum((np.arange(nc) + 1) * grid, w) -
              np.arange(nc) * grid - 1) / 2.0
        score = -((off_r[None, None] - yc[:, None, None])**2 +
                  (off_c[None, None] - xc[None, :, None])**2)
    score = np.where(cells, score, -np.inf)
    best = score.argmax(-1)
    has_bg = cells.any(-1)
    cr, cc = np.nonzero(has_bg)
    k = best[cr, cc]
    rows = cr * grid + off_r[k]
    cols = cc * grid + off_c[k]
    return np.stack([cols, rows], axis=1).astype(np.float32)


def nearest_negatives(pos: np.ndarray,
                      neg: np.ndarray,
                      k: int = 2) -> Tuple[np.ndarray, np.ndarray]:
    """The ``k`` negatives nearest to each positive point.

    Args:
        pos (np.ndarray): ``P x 2`` ``(x, y)`` positive points.
        neg (np.ndarray): ``N x 2`` ``(x, y)`` negative points.
        k (int): Negatives per positive; fewer (``min(k, N)``) if there are
            not enough.

    Returns:
        tuple[np.ndarray, np.ndarray]: ``P x k' x 2`` float32 points and
        ``P x k'`` int64 indices into ``neg`` (``k' = min(k, N)``), nearest
        first.
    """
    pos = check_points(pos, 'pos')
    neg = check_points(neg, 'neg')
    if k < 1:
        raise ValueError(f'k must be >= 1, got {k}')
    kk = min(int(k), len(neg))
    if kk == 0 or len(pos) == 0:
        return (np.zeros((len(pos), kk, 2), np.float32),
                np.zeros((len(pos), kk), np.int64))
    _, idx = cKDTree(neg).query(pos, k=kk)
    idx = np.asarray(idx, dtype=np.int64).reshape(len(pos), kk)
    return neg[idx], idx
