"""Pixel-level (semantic) metrics of a binary foreground segmentation.

Foreground is every pixel with a value > 0, so the inputs may be binary
masks, instance label maps or class maps whose non-zero classes are all
nucleus (e.g. inside / boundary).

Conventions for empty masks (no foreground pixel):

* Dice, IoU, precision, recall, F1: both empty -> 1.0 (nothing to find,
  nothing found); a ratio whose denominator is empty while the other mask
  is not -> 0.0. The background IoU in ``miou`` follows the same rule.
* Hausdorff distances: both empty -> 0.0; exactly one empty -> ``inf``
  (the distance from a non-empty set to the empty set is the supremum of
  an empty infimum, i.e. infinite). Averages over images should skip or
  report such images explicitly; :class:`SemanticMetric` does.
"""
from typing import Dict, Optional, Tuple

import numpy as np
from scipy import ndimage

__all__ = [
    'SEMANTIC_METRIC_NAMES', 'foreground_mask', 'boundary_mask',
    'hausdorff_distance', 'semantic_metrics'
]

#: Keys returned by :func:`semantic_metrics`.
SEMANTIC_METRIC_NAMES = ('dice', 'iou', 'miou', 'precision', 'recall', 'f1',
                         'hausdorff', 'hd95')

# 4-connected structuring element: a boundary pixel is a foreground pixel
# with a background 4-neighbour (or on the image border).
_CROSS = ndimage.generate_binary_structure(2, 1)


def foreground_mask(label: np.ndarray, name: str) -> np.ndarray:
    """Validate a binary / label map and return its foreground.

    Args:
        label (np.ndarray): Map of shape (H, W), bool or integer dtype
            with non-negative values.
        name (str): Name used in error messages.

    Returns:
        np.ndarray: Boolean mask of shape (H, W), True where label > 0.

    Raises:
        ValueError: If the map is not 2-D, not bool / integer, or holds
            negative values.
    """
    label = np.asarray(label)
    if label.ndim != 2:
        raise ValueError(f'{name} must be a 2-D (H, W) map, got shape '
                         f'{label.shape}')
    if label.dtype == bool:
        return label
    if not np.issubdtype(label.dtype, np.integer):
        raise ValueError(f'{name} must have a bool or integer dtype, got '
                         f'{label.dtype}')
    if label.size and np.issubdtype(label.dtype, np.signedinteger) \
            and label.min() < 0:
        raise ValueError(f'{name} holds negative values (min '
                         f'{int(label.min())}); values must be >= 0')
    return label > 0


def boundary_mask(mask: np.ndarray) -> np.ndarray:
    """Inner boundary of a binary mask.

    Args:
        mask (np.ndarray): Boolean mask of shape (H, W).

    Returns:
        np.ndarray: Boolean mask of shape (H, W): foreground pixels with a
        4-connected background neighbour; pixels on the image border count
        as boundary.
    """
    eroded = ndimage.binary_erosion(mask, structure=_CROSS, border_value=0)
    return mask & ~eroded


def _directed_distances(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Distance from every ``src`` pixel to the nearest ``dst`` pixel.

    Args:
        src (np.ndarray): Boolean mask (H, W), the points to measure from.
        dst (np.ndarray): Boolean mask (H, W), non-empty.

    Returns:
        np.ndarray: float64 distances, shape (count of src pixels,).
    """
    # Distance transform of the complement: 0 on dst, distance elsewhere.
    # Only the bounding box of both sets is needed.
    rows = np.flatnonzero((src | dst).any(axis=1))
    cols = np.flatnonzero((src | dst).any(axis=0))
    box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    dist = ndimage.distance_transform_edt(~dst[box])
    return dist[src[box]]


def _boundary_distances(gt: np.ndarray, pred: np.ndarray
                        ) -> Optional[Tuple[np.ndarray, np.ndarray]]:
    """Directed boundary distances gt -> pred and pred -> gt.

    Returns:
        tuple | None: The two distance arrays, or None when a boundary is
        empty.
    """
    a = boundary_mask(gt)
    b = boundary_mask(pred)
    if not (a.any() and b.any()):
        return None
    return _directed_distances(a, b), _directed_distances(b, a)


def _hd_from(dists: Optional[Tuple[np.ndarray, np.ndarray]],
             both_empty: bool, percentile: float) -> float:
    """Hausdorff distance (or percentile variant) from directed distances."""
    if dists is None:
        return 0.0 if both_empty else float('inf')
    d_ab, d_ba = dists
    if percentile >= 100.0:
        return float(max(d_ab.max(), d_ba.max()))
    return float(
        max(np.percentile(d_ab, percentile),
            np.percentile(d_ba, percentile)))


def hausdorff_distance(gt: np.ndarray,
                       pred: np.ndarray,
                       percentile: float = 100.0) -> float:
    """Symmetric Hausdorff distance of the foreground boundaries, in pixels.

    HD = max(max_a d(a, B), max_b d(b, A)) over the boundary pixel sets A
    (of ``gt``) and B (of ``pred``), Euclidean distance between pixel
    centres. With ``percentile`` < 100 the two maxima are replaced by that
    percentile of the directed distances (``percentile=95`` gives HD95, as
    in MONAI: the larger of the two directed 95th percentiles).

    Args:
        gt (np.ndarray): Foreground of shape (H, W): bool mask or map whose
            non-zero values are foreground.
        pred (np.ndarray): Foreground of shape (H, W), same kinds.
        percentile (float): Percentile in (0, 100]. Defaults to 100.

    Returns:
        float: The distance; 0.0 when both masks are empty and ``inf``
        when exactly one is.

    Raises:
        ValueError: On invalid maps, a shape mismatch or a percentile
            outside (0, 100].
    """
    if not 0.0 < percentile <= 100.0:
        raise ValueError(f'percentile must be in (0, 100], got {percentile}')
    gt = foreground_mask(gt, 'gt')
    pred = foreground_mask(pred, 'pred')
    if gt.shape != pred.shape:
        raise ValueError(f'gt and pred shapes differ: gt {gt.shape} vs '
                         f'pred {pred.shape}')
    both_empty = not gt.any() and not pred.any()
    return _hd_from(_boundary_distances(gt, pred), both_empty, percentile)


def _ratio(num: int, den: int) -> float:
    """num / den, with 0 / 0 defined as 1.0 (both sets empty)."""
    return 1.0 if den == 0 else num / den


def _confusion(gt: np.ndarray, pred: np.ndarray) -> Tuple[int, int, int,
                                                          int]:
    """TP, FP, FN, TN pixel counts of two boolean masks."""
    tp = int(np.count_nonzero(gt & pred))
    n_gt = int(np.count_nonzero(gt))
    n_pred = int(np.count_nonzero(pred))
    fp = n_pred - tp
    fn = n_gt - tp
    tn = gt.size - tp - fp - fn
    return tp, fp, fn, tn


def semantic_metrics(gt: np.ndarray,
                     pred: np.ndarray,
                     with_hausdorff: bool = True) -> Dict[str, float]:
    """Pixel metrics of the foreground (value > 0) of two maps.

    Args:
        gt (np.ndarray): Ground-truth map of shape (H, W): bool mask,
            instance label map or class map (any non-zero value is
            foreground).
        pred (np.ndarray): Predicted map of shape (H, W), same kinds.
        with_hausdorff (bool): Also compute ``hausdorff`` and ``hd95``
            (two distance transforms). Defaults to True.

    Returns:
        dict: ``dice`` (= ``f1``), ``iou`` (foreground IoU), ``miou`` (mean
        of foreground and background IoU), ``precision``, ``recall``,
        ``f1`` and, with ``with_hausdorff``, ``hausdorff`` and ``hd95`` in
        pixels. Empty-mask conventions are in the module docstring.

    Raises:
        ValueError: On a shape mismatch, a float dtype or negative values.
    """
    gt_fg = foreground_mask(gt, 'gt')
    pred_fg = foreground_mask(pred, 'pred')
    if gt_fg.shape != pred_fg.shape:
        raise ValueError(f'gt and pred shapes differ: gt {gt_fg.shape} vs '
                         f'pred {pred_fg.shape}')
    tp, fp, fn, tn = _confusion(gt_fg, pred_fg)
    dice = _ratio(2 * tp, 2 * tp + fp + fn)
    iou_fg = _ratio(tp, tp + fp + fn)
    iou_bg = _ratio(tn, tn + fp + fn)
    out = dict(
        dice=dice,
        iou=iou_fg,
        miou=0.5 * (iou_fg + iou_bg),
        # Empty prediction: precision 1 only if nothing was to be found;
        # empty gt: recall 1 only if nothing was predicted.
        precision=tp / (tp + fp) if tp + fp else float(fn == 0),
        recall=tp / (tp + fn) if tp + fn else float(fp == 0),
        f1=dice)
    if with_hausdorff:
        both_empty = tp + fp + fn == 0
        dists = _boundary_distances(gt_fg, pred_fg)
        out['hausdorff'] = _hd_from(dists, both_empty, 100.0)
        out['hd95'] = _hd_from(dists, both_empty, 95.0)
    return out
