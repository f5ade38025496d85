"""Containment-aware soft NMS (SPROUT, Sec. 3.3 and Alg. 3 of App. D.3).

Given instance-mask candidates with a confidence ``S_SAM`` (SAM's
predicted IoU, or a shape score for the weight-free mask stage):

1. **Score.** ``S = w_sam * S_SAM + w_h * S'_H`` with ``S'_H`` the mean,
   inside the mask, of the haematoxylin map normalised to ``[0, 1]``
   (clipped to its 1st and 99th percentiles, as the official code does);
   the paper's weights are 0.7 / 0.3.
2. **Containment penalty** (Alg. 3, lines 7-12). Mask ``j`` is contained
   in mask ``i`` when ``|M_i & M_j| / |M_j| > containment_thresh`` (0.9)
   and ``M_j`` is not larger than ``M_i``. A mask containing
   ``n > 1`` others is scaled by ``1 - tanh(penalty * n)`` (penalty 0.5).
3. **Gaussian soft NMS** (Alg. 3, lines 14-27). Repeatedly keep the
   remaining candidate of highest score, multiply the score of every other
   remaining candidate by ``f(u) = exp(-u**2 / sigma)`` (sigma 0.5) with
   ``u`` their IoU, and drop those whose score falls below ``score_thresh``
   (0.5).

Notes on the reading of Alg. 3 (see also the module's tests):

* ``u``: Alg. 3 writes ``IoU(bbox(M_max), bbox(M_i))`` while the official
  code (``project/utils/NMS.py``, ``soft_nms``) uses the boxes only to skip
  pairs that cannot overlap and decays with the *mask* IoU.
  ``iou_type='mask'`` (default) follows the code, ``iou_type='box'`` the
  letter of the pseudo-code.
* Threshold (``threshold_mode``). Every candidate enters the loop, and
  the current maximum is always kept, whatever its score (Alg. 3, lines
  15-17): an isolated mask scoring below ``score_thresh`` survives.
  ``'official'`` (default) then decays, and drops when below the
  threshold, only the remaining candidates whose box overlaps the kept
  one's (the official loop skips the others: a low-score mask far from
  every kept mask is kept too). ``'alg3'`` applies lines 19-24 to every
  remaining candidate, so after the first pick every candidate already
  below the threshold is dropped (a non-overlapping one has ``f(0) = 1``).
  The box test of ``'official'`` is the code's: the inclusive boxes share
  at least two rows and two columns.
* Containment: only contained masks whose combined score exceeds
  ``contained_score_thresh`` (0.5, the official code's condition; the
  paper states none, ``None`` counts all) count towards ``n``. A big mask
  enclosing two weak masks is therefore not penalised, is kept first, and
  its Gaussian decay removes the weak ones.
* Empty input returns no instances (the official ``merge_overlaps`` reads
  ``masks[0]`` before checking the length and crashes).
* Ties are broken towards the lower candidate index, so the result is
  deterministic.
* The official pipeline runs ``merge (IoU > 0.8) -> score -> soft NMS``
  on every SAM patch and then once more on the union of the patches'
  survivors; :class:`~nucseg.models.mask_generators.SAMPointMaskGenerator`
  (``patch_nms``) and :class:`~nucseg.models.segmentors.SPROUT` (``nms``)
  do the same. The second pass is not redundant: it scores with the
  first pass's decayed scores and the whole image's H percentiles, and it
  suppresses duplicates of nuclei seen by two overlapping patches.
"""
from typing import Optional, Tuple

import numpy as np
from scipy import sparse

from nucseg.models.mask_generators.candidates import (
    InstanceCandidates, pair_box_intersection, pair_box_iou)
from nucseg.registry import TASK_UTILS
from nucseg.utils.stain import stain_concentrations

__all__ = [
    'normalize_h_map', 'hematoxylin_map', 'combined_scores',
    'count_contained', 'containment_aware_soft_nms', 'ContainmentAwareSoftNMS',
    'THRESHOLD_MODES'
]

#: Values of ``threshold_mode`` (see the module notes).
THRESHOLD_MODES = ('official', 'alg3')


def hematoxylin_map(image: np.ndarray) -> np.ndarray:
    """Haematoxylin concentration of an RGB image (SPROUT's stain prior).

    Args:
        image (np.ndarray): ``HxWx3`` uint8 RGB image.

    Returns:
        np.ndarray: ``HxW`` float32 H channel (optical-density units).
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f'image must be HxWx3 RGB, got {image.shape}')
    return stain_concentrations(image)[..., 0]


def normalize_h_map(h_map: np.ndarray,
                    percentiles: Tuple[float, float] = (1.0, 99.0)
                    ) -> np.ndarray:
    """Clip an H map to two percentiles and scale it to ``[0, 1]``.

    Args:
        h_map (np.ndarray): ``HxW`` haematoxylin response.
        percentiles (tuple[float, float]): Low and high clipping points.

    Returns:
        np.ndarray: ``HxW`` float64 map in ``[0, 1]`` (all zeros when the
        map is constant between the percentiles).
    """
    h = np.asarray(h_map, np.float64)
    if h.ndim != 2:
        raise ValueError(f'h_map must be HxW, got shape {h.shape}')
    if not np.isfinite(h).all():
        raise ValueError('h_map contains NaN or inf')
    lo, hi = np.percentile(h, percentiles)
    if hi <= lo:
        return np.zeros_like(h)
    return (np.clip(h, lo, hi) - lo) / (hi - lo)


def combined_scores(cands: InstanceCandidates,
                    h_map: Optional[np.ndarray] = None,
                    sam_weight: float = 0.7,
                    h_weight: float = 0.3,
                    normalize: bool = True) -> np.ndarray:
    """``sam_weight * S_SAM + h_weight * mean(S'_H in mask)``.

    Args:
        cands (InstanceCandidates): Candidates; ``scores`` is ``S_SAM``.
        h_map (np.ndarray, optional): ``HxW`` haematoxylin map. ``None``
            returns the candidates' scores unchanged (no re-weighting).
        sam_weight (float): Weight of the candidate score.
        h_weight (float): Weight of the H response.
        normalize (bool): Normalise ``h_map`` with :func:`normalize_h_map`
            (set False for a map already in ``[0, 1]``).

    Returns:
        np.ndarray: ``(N,)`` float64 scores.
    """
    if h_map is None:
        return cands.scores.astype(np.float64, copy=True)
    h = normalize_h_map(h_map) if normalize else np.asarray(h_map, float)
    return sam_weight * cands.scores + h_weight * cands.mean_in_masks(h)


def count_contained(areas: np.ndarray, i: np.ndarray, j: np.ndarray,
                    inter: np.ndarray, thresh: float = 0.9,
                    valid: Optional[np.ndarray] = None) -> np.ndarray:
    """Number of masks contained in each mask.

    Mask ``s`` is contained in mask ``l`` when ``area_s <= area_l`` and
    ``inter / area_s > thresh`` (equal areas count both ways).

    Args:
        areas (np.ndarray): ``(N,)`` mask areas.
        i, j, inter (np.ndarray): Overlapping pairs and their intersection
            counts (see :meth:`InstanceCandidates.pairwise_overlap`).
        thresh (float): Containment ratio threshold.
        valid (np.ndarray, optional): ``(N,)`` bool; only these masks are
            counted as contained ones.

    Returns:
        np.ndarray: ``(N,)`` int64 counts.
    """
    n = len(areas)
    areas = np.asarray(areas, np.float64)
    counts = np.zeros(n, np.int64)
    if len(i) == 0:
        return counts
    # j inside i, and i inside j.
    j_in_i = (areas[j] <= areas[i]) & (inter > thresh * areas[j])
    i_in_j = (areas[i] <= areas[j]) & (inter > thresh * areas[i])
    if valid is not None:
        j_in_i &= valid[j]
        i_in_j &= valid[i]
    counts += np.bincount(i[j_in_i], minlength=n)
    counts += np.bincount(j[i_in_j], minlength=n)
    return counts


def _decay_matrix(n: int, i: np.ndarray, j: np.ndarray, u: np.ndarray,
                  sigma: float) -> sparse.csr_matrix:
    """Symmetric ``n x n`` sparse matrix of ``exp(-u^2 / sigma)``.

    Every given pair is stored, also with ``u = 0`` (``f = 1``): its
    presence marks the two candidates as neighbours.
    """
    f = np.exp(-u * u / sigma)
    rows = np.concatenate([i, j])
    cols = np.concatenate([j, i])
    vals = np.concatenate([f, f])
    return sparse.csr_matrix((vals, (rows, cols)), shape=(n, n))


def containment_aware_soft_nms(
        cands: InstanceCandidates,
        h_map: Optional[np.ndarray] = None,
        sam_weight: float = 0.7,
        h_weight: float = 0.3,
        containment_thresh: float = 0.9,
        penalty: float = 0.5,
        sigma: float = 0.5,
        score_thresh: float = 0.5,
        iou_type: str = 'mask',
        contained_score_thresh: Optional[float] = 0.5,
        threshold_mode: str = 'official',
        normalize_h: bool = True
) -> Tuple[InstanceCandidates, np.ndarray]:
    """Containment-aware soft NMS (SPROUT Alg. 3) on mask candidates.

    Args:
        cands (InstanceCandidates): ``N`` candidates; ``scores`` are SAM's
            predicted IoUs (or a shape score in ``[0, 1]``).
        h_map (np.ndarray, optional): ``HxW`` haematoxylin map (e.g.
            :func:`hematoxylin_map`); ``None`` uses ``cands.scores`` alone.
        sam_weight (float): Weight of the candidate score (paper: 0.7).
        h_weight (float): Weight of the mean normalised H (paper: 0.3).
        containment_thresh (float): Overlap / area of the smaller mask
            above which it counts as contained (0.9).
        penalty (float): ``epsilon`` of ``1 - tanh(epsilon * n)`` (0.5).
        sigma (float): Gaussian decay ``exp(-u^2 / sigma)`` (0.5).
        score_thresh (float): ``tau``; candidates decayed below it are
            dropped (0.5), see ``threshold_mode``.
        iou_type (str): ``'mask'`` (official code) or ``'box'`` (the letter
            of Alg. 3) IoU in the decay.
        contained_score_thresh (float, optional): Count only contained
            masks whose combined score exceeds this (0.5, the official
            code); ``None`` counts every contained mask.
        threshold_mode (str): ``'official'`` (decay and threshold only the
            candidates whose box overlaps the kept one) or ``'alg3'`` (the
            pseudo-code: every remaining candidate), see the module notes.
        normalize_h (bool): Normalise ``h_map`` to ``[0, 1]`` by its 1st /
            99th percentiles.

    Returns:
        tuple[InstanceCandidates, np.ndarray]: The kept candidates in the
        order they were kept (non-increasing score; ``scores`` are the
        decayed scores at selection) and their indices into ``cands``.
    """
    if sigma <= 0:
        raise ValueError(f'sigma must be > 0, got {sigma}')
    if penalty <= 0:
        raise ValueError(f'penalty must be > 0, got {penalty}')
    if iou_type not in ('mask', 'box'):
        raise ValueError(f"iou_type must be 'mask' or 'box', got "
                         f'{iou_type!r}')
    if threshold_mode not in THRESHOLD_MODES:
        raise ValueError(f'threshold_mode must be one of {THRESHOLD_MODES},'
                         f' got {threshold_mode!r}')
    n = len(cands)
    if n == 0:
        return cands.select(np.zeros(0, np.int64)), np.zeros(0, np.int64)
    if h_map is not None and np.shape(h_map) != tuple(cands.image_shape):
        raise ValueError(f'h_map has shape {np.shape(h_map)}, candidates '
                         f'belong to an image of {cands.image_shape}')
    scores = combined_scores(cands, h_map, sam_weight, h_weight, normalize_h)

    # Every pair of intersecting boxes, with its mask intersection (0 for
    # masks that share no pixel).
    i, j, inter = cands.pairwise_overlap(include_disjoint=True)
    a = cands.areas

    # Pre-decay containment penalty (Alg. 3, lines 7-12).
    valid = (None if contained_score_thresh is None else
             scores > contained_score_thresh)
    n_in = count_contained(a, i, j, inter, containment_thresh, valid)
    hit = n_in > 1
    scores[hit] *= 1.0 - np.tanh(penalty * n_in[hit])

    # Neighbours: the candidates a kept one decays (and may drop).
    if threshold_mode == 'official':
        # The code's test on inclusive boxes: >= 2 shared rows and columns.
        iw, ih = pair_box_intersection(cands.boxes, i, j)
        near = (iw > 1) & (ih > 1)
        i, j, inter = i[near], j[near], inter[near]
    if iou_type == 'mask':
        u = inter / np.maximum(a[i] + a[j] - inter, 1)
    else:
        u = pair_box_iou(cands.boxes, i, j)
    decay = _decay_matrix(n, i, j, u, sigma)
    indptr, indices, data = decay.indptr, decay.indices, decay.data

    # Iterative Gaussian soft NMS (Alg. 3, lines 14-27).
    current = scores.copy()  # -inf once kept or dropped
    kept, kept_scores = [], []
    for step in range(n):
        m = int(np.argmax(current))
        if not np.isfinite(current[m]):
            break
        kept.append(m)
        kept_scores.append(scores[m])
        current[m] = -np.inf
        nb = indices[indptr[m]:indptr[m + 1]]
        f = data[indptr[m]:indptr[m + 1]]
        live = np.isfinite(current[nb])
        nb, f = nb[live], f[live]
        scores[nb] *= f
        current[nb] = np.where(scores[nb] >= score_thresh, scores[nb],
                               -np.inf)
        if step == 0 and threshold_mode == 'alg3':
            # f(0) = 1 for the rest: everything below tau goes now (later
            # scores change only through decays, checked above).
            current[scores < score_thresh] = -np.inf
    idx = np.asarray(kept, np.int64)
    out = cands.select(idx).with_scores(np.asarray(kept_scores, np.float64))
    return out, idx


@TASK_UTILS.register_module()
class ContainmentAwareSoftNMS:
    """Config-buildable :func:`containment_aware_soft_nms`.

    ``__call__(cands, h_map=None, image=None)``: when ``h_map`` is not
    given but ``image`` (``HxWx3`` uint8 RGB) is, the H map is computed by
    colour deconvolution (:func:`hematoxylin_map`).

    Args:
        sam_weight, h_weight, containment_thresh, penalty, sigma,
        score_thresh, iou_type, contained_score_thresh, threshold_mode,
        normalize_h: See :func:`containment_aware_soft_nms`.
        return_label_map (bool): Return the ``HxW`` int32 instance map
            (kept masks painted by score) instead of the candidates.
    """

    def __init__(self,
                 sam_weight: float = 0.7,
                 h_weight: float = 0.3,
                 containment_thresh: float = 0.9,
                 penalty: float = 0.5,
                 sigma: float = 0.5,
                 score_thresh: float = 0.5,
                 iou_type: str = 'mask',
                 contained_score_thresh: Optional[float] = 0.5,
                 threshold_mode: str = 'official',
                 normalize_h: bool = True,
                 return_label_map: bool = False) -> None:
        if threshold_mode not in THRESHOLD_MODES:
            raise ValueError(f'threshold_mode must be one of '
                             f'{THRESHOLD_MODES}, got {threshold_mode!r}')
        self.kwargs = dict(
            sam_weight=sam_weight,
            h_weight=h_weight,
            containment_thresh=containment_thresh,
            penalty=penalty,
            sigma=sigma,
            score_thresh=score_thresh,
            iou_type=iou_type,
            contained_score_thresh=contained_score_thresh,
            threshold_mode=threshold_mode,
            normalize_h=normalize_h)
        self.return_label_map = return_label_map

    def __call__(self,
                 cands: InstanceCandidates,
                 h_map: Optional[np.ndarray] = None,
                 image: Optional[np.ndarray] = None):
        if h_map is None and image is not None:
            h_map = hematoxylin_map(image)
        kept, _ = containment_aware_soft_nms(cands, h_map, **self.kwargs)
        if self.return_label_map:
            return kept.to_label_map(order='score')
        return kept
