"""Instance post-processors: probability maps -> instance label maps.

Each post-processor is a callable registered in ``TASK_UTILS`` taking the
per-pixel class probabilities of one image (``CxHxW`` tensor or array) and
returning an ``HxW`` int32 instance map (0 = background, ids ``1..N``).
"""
from typing import List, Sequence, Union

import numpy as np
import torch
from mmengine.structures import PixelData
from scipy import ndimage as ndi
from skimage.feature import peak_local_max
from skimage.morphology import remove_small_holes, remove_small_objects
from skimage.segmentation import watershed

from nucseg.registry import TASK_UTILS
from nucseg.utils.labels import relabel_sequential

ArrayLike = Union[torch.Tensor, np.ndarray]


def _to_numpy(probs: ArrayLike) -> np.ndarray:
    if isinstance(probs, torch.Tensor):
        probs = probs.detach().float().cpu().numpy()
    probs = np.asarray(probs, dtype=np.float32)
    if probs.ndim == 2:
        probs = probs[None]
    if probs.ndim != 3:
        raise ValueError(f'expected CxHxW probabilities, got {probs.shape}')
    if not np.isfinite(probs).all():
        raise ValueError('probability map contains NaN or inf')
    return probs


def _finish(inst: np.ndarray, min_area: int) -> np.ndarray:
    """Drop instances smaller than ``min_area`` and renumber 1..N."""
    if min_area > 1 and inst.any():
        areas = np.bincount(inst.ravel())
        small = areas < min_area
        small[0] = False
        inst = np.where(small[inst], 0, inst)
    return relabel_sequential(inst)


@TASK_UTILS.register_module()
class ContourWatershed:
    """Marker-controlled watershed for three-class contour predictions.

    Channels are (background, interior, boundary) as produced by
    :class:`~nucseg.datasets.transforms.GenerateNucleiTarget` in
    ``'contour'`` mode. Foreground is ``p_interior + p_boundary >
    fg_thresh``; markers are the connected components of ``p_interior -
    p_boundary > seed_thresh`` (interiors cut apart by predicted
    boundaries); the watershed of ``-p_interior`` grows them over the
    foreground, so touching nuclei are split along the predicted contour.

    Args:
        fg_thresh (float): Foreground probability threshold.
        seed_thresh (float): Threshold on ``p_interior - p_boundary``.
        min_seed_area (int): Smaller marker components are discarded.
        min_area (int): Smaller final instances are removed.
        hole_area (int): Holes up to this size in the foreground are filled.
    """

    def __init__(self,
                 fg_thresh: float = 0.5,
                 seed_thresh: float = 0.3,
                 min_seed_area: int = 4,
                 min_area: int = 10,
                 hole_area: int = 16) -> None:
        self.fg_thresh = fg_thresh
        self.seed_thresh = seed_thresh
        self.min_seed_area = min_seed_area
        self.min_area = min_area
        self.hole_area = hole_area

    def __call__(self, probs: ArrayLike) -> np.ndarray:
        p = _to_numpy(probs)
        if p.shape[0] != 3:
            raise ValueError('ContourWatershed needs 3 channels (bg, '
                             f'interior, boundary), got {p.shape[0]}')
        interior, boundary = p[1], p[2]
        fg = (interior + boundary) > self.fg_thresh
        if self.hole_area > 0:
            fg = remove_small_holes(fg, max_size=self.hole_area)
        seeds = (interior - boundary) > self.seed_thresh
        seeds &= fg
        if self.min_seed_area > 1:
            seeds = remove_small_objects(seeds, max_size=self.min_seed_area
                                         - 1)
        markers, n = ndi.label(seeds)
        if n == 0:
            return np.zeros(fg.shape, np.int32)
        inst = watershed(-interior, markers, mask=fg)
        return _finish(inst, self.min_area)


@TASK_UTILS.register_module()
class DistanceWatershed:
    """Distance-transform watershed for a foreground probability map.

    Foreground is the last channel (or the only one) above ``fg_thresh``
    (for 3-class contour output, interior + boundary); markers are the
    peaks of its Euclidean distance transform (at least ``min_distance``
    apart, ``h``-suppressed by ``peak_thresh``), grown by watershed on the
    negative distance.

    Args:
        fg_thresh (float): Foreground probability threshold.
        min_distance (int): Minimal distance between markers (pixels).
        peak_thresh (float): Minimal distance value of a marker.
        min_area (int): Smaller instances are removed.
        hole_area (int): Holes up to this size are filled.
    """

    def __init__(self,
                 fg_thresh: float = 0.5,
                 min_distance: int = 4,
                 peak_thresh: float = 1.5,
                 min_area: int = 10,
                 hole_area: int = 16) -> None:
        self.fg_thresh = fg_thresh
        self.min_distance = min_distance
        self.peak_thresh = peak_thresh
        self.min_area = min_area
        self.hole_area = hole_area

    def foreground(self, p: np.ndarray) -> np.ndarray:
        if p.shape[0] == 1:
            prob = p[0]
        elif p.shape[0] == 2:
            prob = p[1]
        else:
            prob = p[1:].sum(0)
        return prob > self.fg_thresh

    def __call__(self, probs: ArrayLike) -> np.ndarray:
        fg = self.foreground(_to_numpy(probs))
        return self.split(fg)

    def split(self, fg: np.ndarray) -> np.ndarray:
        """Split a binary foreground mask (``HxW`` bool) into instances."""
        if self.hole_area > 0:
            fg = remove_small_holes(fg, max_size=self.hole_area)
        if not fg.any():
            return np.zeros(fg.shape, np.int32)
        dist = ndi.distance_transform_edt(fg)
        comps, _ = ndi.label(fg)
        peaks = peak_local_max(
            dist,
            min_distance=self.min_distance,
            threshold_abs=self.peak_thresh,
            labels=comps,
            exclude_border=False)
        markers = np.zeros(fg.shape, np.int32)
        markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
        # Components without any peak (small blobs) keep one marker each.
        has_peak = np.zeros(comps.max() + 1, bool)
        has_peak[comps[tuple(peaks.T)]] = True
        lonely = ~has_peak[comps] & fg
        extra, _ = ndi.label(lonely)
        markers = np.where(lonely, extra + len(peaks), markers)
        inst = watershed(-dist, markers, mask=fg)
        return _finish(inst, self.min_area)


def add_instance_predictions(data_samples: Sequence,
                             postprocessor) -> List:
    """Run ``postprocessor`` on each sample's ``seg_logits`` in place.

    Multi-class logits are soft-maxed; single-channel outputs are already
    sigmoid probabilities (mmseg's ``postprocess_result`` applies it).
    Each sample gets ``pred_instance_map`` (``1xHxW`` int64 PixelData).
    """
    for sample in data_samples:
        logits = sample.seg_logits.data
        probs = logits.softmax(0) if logits.shape[0] > 1 else logits
        inst = postprocessor(probs)
        sample.pred_instance_map = PixelData(
            data=torch.from_numpy(inst.astype(np.int64))[None].to(
                logits.device))
    return list(data_samples)
