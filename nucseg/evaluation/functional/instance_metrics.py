"""Vectorised nuclei instance metrics with HoVer-Net's definitions.

The statistics follow ``compute_stats`` / ``metrics/stats_utils.py`` of
HoVer-Net (Graham et al., MedIA 2019): AJI (``get_fast_aji``), AJI+
(``get_fast_aji_plus``), DQ / SQ / PQ (``get_fast_pq``) and the binary
foreground Dice (``get_dice_1``). Both label maps are renumbered to
contiguous ids first (``remap_label``), so any set of positive ids works.

Instead of one boolean mask per instance, the whole pairwise intersection
table is built in a single pass over the pixels (``np.bincount`` of
``gt_index * n_pred + pred_index`` over the pixels where both maps are
foreground), which keeps a 1000x1000 tile with ~700 nuclei well under a
tenth of a second.

Conventions beyond HoVer-Net (which divides by zero or crashes there):

* both maps empty (no instance at all): every score is 1.0 -- the
  prediction is exactly right, and averaging per-image scores over a data
  set should not punish an image without nuclei that was predicted empty;
* exactly one map empty: every score is 0.0 (never NaN, never an error).
"""
from typing import Dict, Tuple, Union

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from nucseg.utils.labels import dense_index, relabel_sequential

__all__ = [
    'INSTANCE_METRIC_NAMES', 'check_label_map', 'remap_label',
    'instance_metrics'
]

#: Score keys returned by :func:`instance_metrics` (besides the counts).
INSTANCE_METRIC_NAMES = ('aji', 'aji_plus', 'dq', 'sq', 'pq', 'dice',
                         'obj_f1')

# The pair table is counted with a dense ``np.bincount`` when it has at
# most this many cells or no more cells than overlapping pixels; otherwise
# (many instances, little overlap) ``np.unique`` over the pair codes is
# cheaper than allocating the dense table.
_DENSE_PAIR_CELLS = 1 << 16
# HoVer-Net's epsilon in AJI/AJI+ IoUs and in the SQ denominator.
_EPS = 1.0e-6


def check_label_map(label: np.ndarray, name: str) -> np.ndarray:
    """Validate one instance label map.

    Args:
        label (np.ndarray): Label map of shape (H, W), integer dtype,
            0 = background and one positive id per instance.
        name (str): Name used in error messages (e.g. ``'gt'``).

    Returns:
        np.ndarray: ``label`` as an array (not copied when possible).

    Raises:
        ValueError: If ``label`` is not 2-D, not of an integer dtype or
            holds negative values.
    """
    label = np.asarray(label)
    if label.ndim != 2:
        raise ValueError(f'{name} must be a 2-D (H, W) label map, got '
                         f'shape {label.shape}')
    if not np.issubdtype(label.dtype, np.integer):
        raise ValueError(f'{name} must have an integer dtype (0 = '
                         f'background, one positive id per instance), '
                         f'got {label.dtype}')
    if label.size and np.issubdtype(label.dtype, np.signedinteger) \
            and label.min() < 0:
        raise ValueError(f'{name} holds negative ids (min '
                         f'{int(label.min())}); ids must be >= 0')
    return label


def remap_label(label: np.ndarray) -> np.ndarray:
    """Renumber instance ids to 1..n, keeping their order (HoVer-Net).

    Args:
        label (np.ndarray): Label map of shape (H, W), integer dtype,
            non-negative.

    Returns:
        np.ndarray: int32 label map of shape (H, W) with the k-th smallest
        positive id replaced by k and 0 kept as background.
    """
    return relabel_sequential(check_label_map(label, 'label'))


def _pair_table(g: np.ndarray, p: np.ndarray, n_gt: int, n_pred: int
                ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sparse intersection table of two renumbered flat maps.

    Returns:
        tuple: ``rows`` (gt index 0..n_gt-1), ``cols`` (pred index) and
        ``inter`` (int64 pixel counts > 0), one entry per overlapping pair,
        in row-major order.
    """
    if n_gt == 0 or n_pred == 0:
        empty = np.zeros(0, np.intp)
        return empty, empty, np.zeros(0, np.int64)
    both = (g > 0) & (p > 0)
    codes = ((g[both].astype(np.intp) - 1) * n_pred +
             (p[both].astype(np.intp) - 1))
    if n_gt * n_pred <= max(codes.size, _DENSE_PAIR_CELLS):
        counts = np.bincount(codes, minlength=n_gt * n_pred)
        codes = np.flatnonzero(counts)
        inter = counts[codes]
    else:
        codes, inter = np.unique(codes, return_counts=True)
    rows, cols = np.divmod(codes, n_pred)
    return rows, cols, inter.astype(np.int64)


def _max_weight_matching(rows: np.ndarray, cols: np.ndarray,
                         weight: np.ndarray) -> np.ndarray:
    """Unique (one-to-one) pairing with maximal total weight.

    Same optimum as HoVer-Net's ``linear_sum_assignment(-iou)`` on the
    dense table, but the table is block diagonal after permutation: pairs
    sharing no gt or pred with any other pair are matched directly, and
    every other connected component of the overlap graph (a handful of
    touching nuclei) gets its own small Hungarian assignment. Only when
    several assignments reach exactly the same total may the chosen one
    differ from HoVer-Net's.

    Args:
        rows (np.ndarray): Row index of each candidate pair, shape (E,).
        cols (np.ndarray): Column index of each candidate pair, shape (E,).
        weight (np.ndarray): Positive weight of each pair, shape (E,).

    Returns:
        np.ndarray: Boolean mask of shape (E,) selecting the matched pairs.
    """
    selected = np.zeros(rows.size, bool)
    if rows.size == 0:
        return selected
    n_rows, n_cols = int(rows.max()) + 1, int(cols.max()) + 1
    row_deg = np.bincount(rows, minlength=n_rows)
    col_deg = np.bincount(cols, minlength=n_cols)
    lone = (row_deg[rows] == 1) & (col_deg[cols] == 1)
    selected[lone] = True
    rest = np.flatnonzero(~lone)
    if rest.size == 0:
        return selected
    # Connected components of the bipartite overlap graph.
    r, c = rows[rest], cols[rest]
    graph = coo_matrix((np.ones(rest.size, np.int8), (r, c + n_rows)),
                       shape=(n_rows + n_cols, n_rows + n_cols))
    _, node_comp = connected_components(graph, directed=False)
    # Local row / column index of every node inside its component.
    local = np.zeros(n_rows + n_cols, np.intp)
    size = np.zeros((node_comp.max() + 1, 2), np.intp)
    for side, nodes in ((0, np.unique(r)), (1, np.unique(c) + n_rows)):
        order = nodes[np.argsort(node_comp[nodes], kind='stable')]
        comp = node_comp[order]
        first = np.searchsorted(comp, comp)
        local[order] = np.arange(order.size) - first
        size[:, side] = np.bincount(comp, minlength=size.shape[0])
    edge_comp = node_comp[r]
    order = np.argsort(edge_comp, kind='stable')
    bounds = np.flatnonzero(np.diff(edge_comp[order])) + 1
    for group in np.split(order, bounds):
        comp = edge_comp[group[0]]
        lr, lc = local[r[group]], local[c[group] + n_rows]
        dense = np.zeros(size[comp], np.float64)
        dense[lr, lc] = weight[rest[group]]
        edge = np.full(size[comp], -1, np.intp)
        edge[lr, lc] = rest[group]
        mr, mc = linear_sum_assignment(dense, maximize=True)
        chosen = edge[mr, mc]
        selected[chosen[chosen >= 0]] = True
    return selected


def instance_metrics(gt: np.ndarray,
                     pred: np.ndarray,
                     match_iou: float = 0.5) -> Dict[str, Union[float, int]]:
    """AJI, AJI+, DQ, SQ, PQ, Dice and object F1 of one image.

    Definitions (HoVer-Net ``compute_stats``), with IoU = |G & P| / |G | P|
    of one gt instance G and one predicted instance P:

    * ``aji``: every gt instance is paired with the prediction of highest
      IoU (first one on ties; a prediction may serve several gt
      instances); AJI = sum of paired intersections / (sum of paired
      unions + areas of unpaired gt and of never-chosen predictions).
    * ``aji_plus``: as AJI, but with a unique pairing maximising the total
      IoU (Hungarian assignment).
    * ``dq`` / ``sq`` / ``pq``: a match is a pair with IoU > ``match_iou``
      (unique for ``match_iou >= 0.5``; for smaller thresholds the pairs
      come from a Hungarian assignment on IoU, then thresholded).
      DQ = TP / (TP + FP/2 + FN/2), SQ = sum of matched IoUs /
      (TP + 1e-6), PQ = DQ * SQ.
    * ``dice``: Dice of the binary foregrounds (``get_dice_1``).
    * ``obj_f1``: detection F1 = 2TP / (2TP + FP + FN) at the same match
      rule; numerically equal to DQ, reported under its common name.

    Both maps empty gives 1.0 for every score; only one empty gives 0.0
    (see the module docstring).

    Args:
        gt (np.ndarray): Ground-truth label map of shape (H, W), integer
            dtype, 0 = background, one positive id per nucleus. Ids need
            not be contiguous.
        pred (np.ndarray): Predicted label map of shape (H, W), same
            conventions.
        match_iou (float): IoU threshold of a match, in [0, 1].
            Defaults to 0.5.

    Returns:
        dict: ``aji``, ``aji_plus``, ``dq``, ``sq``, ``pq``, ``dice``,
        ``obj_f1`` (floats) and the counts ``tp``, ``fp``, ``fn`` (ints).

    Raises:
        ValueError: On a shape mismatch, a non-integer dtype, negative ids
            or ``match_iou`` outside [0, 1].
    """
    gt = check_label_map(gt, 'gt')
    pred = check_label_map(pred, 'pred')
    if gt.shape != pred.shape:
        raise ValueError(f'gt and pred shapes differ: gt {gt.shape} vs '
                         f'pred {pred.shape}')
    if not 0.0 <= match_iou <= 1.0:
        raise ValueError(f'match_iou must be in [0, 1], got {match_iou}')

    g, n_gt = dense_index(gt)
    p, n_pred = dense_index(pred)
    if n_gt == 0 and n_pred == 0:
        out = {name: 1.0 for name in INSTANCE_METRIC_NAMES}
        out.update(tp=0, fp=0, fn=0)
        return out

    gt_area = np.bincount(g, minlength=n_gt + 1)[1:].astype(np.int64)
    pred_area = np.bincount(p, minlength=n_pred + 1)[1:].astype(np.int64)
    rows, cols, inter = _pair_table(g, p, n_gt, n_pred)
    union = gt_area[rows] + pred_area[cols] - inter
    inter_f = inter.astype(np.float64)
    union_f = union.astype(np.float64)
    # HoVer-Net: exact IoU for PQ, epsilon-guarded IoU for AJI / AJI+.
    iou = inter_f / union_f
    iou_eps = inter_f / (union_f + _EPS)

    # Dice of the foregrounds (get_dice_1).
    fg_inter = int(inter.sum())
    dice = 2.0 * fg_inter / float(gt_area.sum() + pred_area.sum())

    # DQ / SQ / PQ (get_fast_pq).
    if match_iou >= 0.5:
        matched = iou > match_iou
    else:
        matched = _max_weight_matching(rows, cols, iou)
        matched &= iou > match_iou
    tp = int(np.count_nonzero(matched))
    fp = n_pred - tp
    fn = n_gt - tp
    dq = tp / (tp + 0.5 * fp + 0.5 * fn)
    sq = float(iou[matched].sum()) / (tp + _EPS)

    # AJI (get_fast_aji): best-IoU prediction of every gt, first on ties.
    order = np.lexsort((cols, -iou_eps, rows))
    first = np.ones(order.size, bool)
    first[1:] = rows[order[1:]] != rows[order[:-1]]
    best = order[first]
    aji = _aji_from_pairs(best, rows, cols, inter_f, union_f, gt_area,
                          pred_area)

    # AJI+ (get_fast_aji_plus): unique pairing of maximal total IoU.
    unique = np.flatnonzero(_max_weight_matching(rows, cols, iou_eps))
    aji_plus = _aji_from_pairs(unique, rows, cols, inter_f, union_f,
                               gt_area, pred_area)

    return dict(
        aji=aji,
        aji_plus=aji_plus,
        dq=dq,
        sq=sq,
        pq=dq * sq,
        dice=dice,
        obj_f1=2.0 * tp / (2.0 * tp + fp + fn),
        tp=tp,
        fp=fp,
        fn=fn)


def _aji_from_pairs(pairs: np.ndarray, rows: np.ndarray, cols: np.ndarray,
                    inter: np.ndarray, union: np.ndarray,
                    gt_area: np.ndarray, pred_area: np.ndarray) -> float:
    """Aggregated Jaccard index from a chosen set of pairs.

    Args:
        pairs (np.ndarray): Indices into the pair table of the chosen
            (gt, pred) pairs; a pred may appear several times (AJI).
        rows, cols, inter, union (np.ndarray): The pair table, shape (E,).
        gt_area (np.ndarray): Pixel count of each gt instance, (n_gt,).
        pred_area (np.ndarray): Pixel count of each prediction, (n_pred,).

    Returns:
        float: AJI (0.0 when the overall union is empty, which cannot
        happen unless both maps are empty, handled by the caller).
    """
    paired_gt = np.zeros(gt_area.size, bool)
    paired_gt[rows[pairs]] = True
    paired_pred = np.zeros(pred_area.size, bool)
    paired_pred[cols[pairs]] = True
    overall_inter = float(inter[pairs].sum())
    overall_union = (float(union[pairs].sum()) +
                     float(gt_area[~paired_gt].sum()) +
                     float(pred_area[~paired_pred].sum()))
    if overall_union == 0.0:
        return 0.0
    return overall_inter / overall_union
