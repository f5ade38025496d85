"""Slow, straightforward reference for :func:`instance_metrics`.

This module exists to check the vectorised implementation, not to be used
for evaluation: it loops over instances with one boolean mask each and
fills dense pairwise tables, the way HoVer-Net's ``metrics/stats_utils.py``
does, so it is easy to read against the published definitions and easy to
trust. The tests (``tests/test_evaluation``) and the benchmark
(``tools/analysis_tools/benchmark_metrics.py``) both compare against it.

It applies the same conventions for empty maps as :func:`instance_metrics`
(both empty: 1.0, one empty: 0.0) and expects validated input.

Two helpers make seeded synthetic inputs for those checks:
:func:`random_instance_map` (touching / overlapping ellipses) and
:func:`perturb_instance_map` (a plausible imperfect "prediction" of a label
map: eroded, dilated, dropped, merged, split, shifted and spurious
instances).
"""
from typing import Dict, List, Tuple, Union

import numpy as np
from scipy import ndimage
from scipy.optimize import linear_sum_assignment

__all__ = [
    'reference_instance_metrics', 'random_instance_map',
    'perturb_instance_map'
]


def _renumber(label: np.ndarray) -> np.ndarray:
    """Contiguous ids 1..n in increasing order of the original ids."""
    out = np.zeros(label.shape, np.int64)
    ids = [i for i in np.unique(label) if i != 0]
    for new_id, old_id in enumerate(ids, start=1):
        out[label == old_id] = new_id
    return out


def _aji(pairs: List[tuple], inter: np.ndarray, union: np.ndarray,
         gt_area: List[int], pred_area: List[int]) -> float:
    """AJI from a list of (gt index, pred index) pairs."""
    total_inter = 0.0
    total_union = 0.0
    for i, j in pairs:
        total_inter += inter[i, j]
        total_union += union[i, j]
    paired_gt = {i for i, _ in pairs}
    paired_pred = {j for _, j in pairs}
    for i, area in enumerate(gt_area):
        if i not in paired_gt:
            total_union += area
    for j, area in enumerate(pred_area):
        if j not in paired_pred:
            total_union += area
    return float(total_inter / total_union)


def reference_instance_metrics(gt: np.ndarray,
                               pred: np.ndarray,
                               match_iou: float = 0.5
                               ) -> Dict[str, Union[float, int]]:
    """Per-instance loop version of :func:`instance_metrics`.

    Args:
        gt (np.ndarray): Ground-truth label map of shape (H, W), integer,
            non-negative.
        pred (np.ndarray): Predicted label map of shape (H, W).
        match_iou (float): IoU threshold of a match. Defaults to 0.5.

    Returns:
        dict: Same keys as :func:`instance_metrics`.
    """
    gt = _renumber(gt)
    pred = _renumber(pred)
    n_gt, n_pred = int(gt.max(initial=0)), int(pred.max(initial=0))
    names = ('aji', 'aji_plus', 'dq', 'sq', 'pq', 'dice', 'obj_f1')
    if n_gt == 0 and n_pred == 0:
        out = {name: 1.0 for name in names}
        out.update(tp=0, fp=0, fn=0)
        return out

    inter = np.zeros((n_gt, n_pred), np.float64)
    union = np.zeros((n_gt, n_pred), np.float64)
    # Masks are made on the fly (a list of all of them would not fit in
    # memory for large tiles).
    gt_area = [int((gt == i).sum()) for i in range(1, n_gt + 1)]
    pred_area = [int((pred == j).sum()) for j in range(1, n_pred + 1)]
    for i in range(n_gt):
        g_mask = gt == i + 1
        # Only predictions under this gt instance can overlap it.
        for pred_id in np.unique(pred[g_mask]):
            if pred_id == 0:
                continue
            p_mask = pred == pred_id
            inter[i, pred_id - 1] = np.logical_and(g_mask, p_mask).sum()
            union[i, pred_id - 1] = np.logical_or(g_mask, p_mask).sum()
    iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    iou_eps = inter / (union + 1.0e-6)

    # Binary Dice.
    gt_fg = gt > 0
    pred_fg = pred > 0
    dice = 2.0 * np.logical_and(gt_fg, pred_fg).sum() / (
        gt_fg.sum() + pred_fg.sum())

    # PQ.
    if match_iou >= 0.5:
        pairs = list(zip(*np.nonzero(iou > match_iou)))
    else:
        rows, cols = linear_sum_assignment(-iou)
        pairs = [(i, j) for i, j in zip(rows, cols) if iou[i, j] > match_iou]
    tp = len(pairs)
    fp = n_pred - tp
    fn = n_gt - tp
    dq = tp / (tp + 0.5 * fp + 0.5 * fn)
    sq = sum(iou[i, j] for i, j in pairs) / (tp + 1.0e-6)

    # AJI: best prediction of every gt instance that overlaps any.
    aji_pairs = []
    for i in range(n_gt):
        if n_pred and iou_eps[i].max() > 0:
            aji_pairs.append((i, int(np.argmax(iou_eps[i]))))
    aji = _aji(aji_pairs, inter, union, gt_area, pred_area)

    # AJI+: unique pairing by Hungarian assignment.
    rows, cols = linear_sum_assignment(-iou_eps)
    plus_pairs = [(i, j) for i, j in zip(rows, cols) if iou_eps[i, j] > 0]
    aji_plus = _aji(plus_pairs, inter, union, gt_area, pred_area)

    return dict(
        aji=aji,
        aji_plus=aji_plus,
        dq=float(dq),
        sq=float(sq),
        pq=float(dq * sq),
        dice=float(dice),
        obj_f1=2.0 * tp / (2.0 * tp + fp + fn),
        tp=tp,
        fp=fp,
        fn=fn)


def _paint_ellipses(label: np.ndarray, count: int, first_id: int,
                    axes: Tuple[float, float], rng: np.random.Generator,
                    only_background: bool) -> None:
    """Paint ``count`` random ellipses into ``label`` in place."""
    h, w = label.shape
    for k in range(count):
        a, b = rng.uniform(axes[0], axes[1], size=2)
        theta = rng.uniform(0, np.pi)
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        r = int(np.ceil(max(a, b)))
        y0, y1 = max(int(cy) - r, 0), min(int(cy) + r + 1, h)
        x0, x1 = max(int(cx) - r, 0), min(int(cx) + r + 1, w)
        if y0 >= y1 or x0 >= x1:
            continue
        yy, xx = np.mgrid[y0:y1, x0:x1]
        dy, dx = yy - cy, xx - cx
        u = dx * np.cos(theta) + dy * np.sin(theta)
        v = -dx * np.sin(theta) + dy * np.cos(theta)
        inside = (u / a)**2 + (v / b)**2 <= 1.0
        if only_background:
            inside &= label[y0:y1, x0:x1] == 0
        label[y0:y1, x0:x1][inside] = first_id + k


def random_instance_map(shape: Tuple[int, int],
                        count: int,
                        rng: np.random.Generator,
                        axes: Tuple[float, float] = (5.0, 14.0)
                        ) -> np.ndarray:
    """Label map of random ellipses (touching and overlapping allowed).

    Later ellipses are painted over earlier ones, so a few instances may
    be split in two pieces or vanish; ids are renumbered to 1..n.

    Args:
        shape (tuple[int, int]): (H, W) of the map.
        count (int): Number of ellipses painted.
        rng (np.random.Generator): Random generator (seeded by the caller).
        axes (tuple[float, float]): Range of the semi-axes in pixels.

    Returns:
        np.ndarray: int32 label map of shape (H, W).
    """
    label = np.zeros(shape, np.int32)
    _paint_ellipses(label, count, 1, axes, rng, only_background=False)
    return _renumber(label).astype(np.int32)


def perturb_instance_map(label: np.ndarray,
                         rng: np.random.Generator,
                         fraction: float = 0.08) -> np.ndarray:
    """A plausible imperfect prediction derived from a label map.

    Each of the following hits about ``fraction`` of the instances:
    erosion by one pixel, dilation into the background by one pixel,
    removal, merge with a touching neighbour, split in two halves; then the
    whole map is shifted by up to 2 pixels and spurious small ellipses are
    added on the background.

    Args:
        label (np.ndarray): Instance label map of shape (H, W).
        rng (np.random.Generator): Random generator (seeded by the caller).
        fraction (float): Share of instances hit by each change.

    Returns:
        np.ndarray: int32 label map of shape (H, W) (ids not contiguous).
    """
    pred = label.astype(np.int32, copy=True)
    ids = np.unique(pred)
    ids = ids[ids > 0]
    if ids.size == 0:
        return pred
    n_hit = max(1, int(round(fraction * ids.size)))

    def pick() -> np.ndarray:
        return rng.choice(ids, size=min(n_hit, ids.size), replace=False)

    # Erode: remove pixels with a differently labelled 4-neighbour.
    cross = ndimage.generate_binary_structure(2, 1)
    edge = (ndimage.grey_dilation(pred, footprint=cross) !=
            ndimage.grey_erosion(pred, footprint=cross))
    pred[edge & np.isin(pred, pick())] = 0
    # Dilate into the background.
    grown = ndimage.grey_dilation(pred, footprint=cross)
    into = (pred == 0) & np.isin(grown, pick())
    pred[into] = grown[into]
    # Remove.
    pred[np.isin(pred, pick())] = 0
    # Merge with a touching neighbour (horizontal contacts).
    left, right = pred[:, :-1], pred[:, 1:]
    contact = (left > 0) & (right > 0) & (left != right)
    pairs = np.unique(np.stack([left[contact], right[contact]], 1), axis=0)
    if len(pairs):
        chosen = pairs[rng.permutation(len(pairs))[:n_hit]]
        lut = np.arange(int(pred.max()) + 1)
        lut[chosen[:, 1]] = chosen[:, 0]
        pred = lut[pred].astype(np.int32)
    # Split: pixels right of the centroid get a new id.
    ys, xs = np.nonzero(pred)
    size = np.bincount(pred[ys, xs], minlength=pred.max() + 1)
    cx = np.bincount(pred[ys, xs], weights=xs, minlength=size.size)
    cx = cx / np.maximum(size, 1)
    split = np.zeros(max(size.size, int(ids.max()) + 1), bool)
    split[pick()] = True
    right_half = split[pred[ys, xs]] & (xs > cx[pred[ys, xs]])
    offset = int(pred.max())
    pred[ys[right_half], xs[right_half]] += offset
    # Shift the whole map.
    dy, dx = rng.integers(-2, 3, size=2)
    pred = ndimage.shift(pred, (dy, dx), order=0, mode='constant', cval=0)
    # Spurious detections on the background.
    _paint_ellipses(pred, n_hit, int(pred.max()) + 1, (3.0, 8.0), rng,
                    only_background=True)
    return pred
