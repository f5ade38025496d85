"""A weight-free mask stage for SPROUT: marker-controlled watershed.

Interchangeable with :class:`~nucseg.models.mask_generators.
sam_point_masks.SAMPointMaskGenerator` (same call, same
:class:`InstanceCandidates` output) when no SAM weights are available: the
foreground mask of SPROUT's CRF/Otsu stage is split into nuclei by a
marker-controlled watershed (:func:`skimage.segmentation.watershed`) with

* one marker per positive point (a disk of ``marker_radius`` px, labels
  ``1..N`` in point order; a later point overwrites an earlier one where
  disks overlap, and a point whose disk is entirely overwritten or
  outside the foreground yields no instance);
* one shared background marker made of the negative points (disks of the
  same radius, drawn first so that positives win on overlap): a negative
  point inside the foreground claims its basin for the background;
* elevation ``'distance'`` (default): the negative Euclidean distance to
  the background, so touching round nuclei split at their neck
  (SPROUT App. B.6 uses the same map to place the positive points), or
  ``'h_gradient'``: the Sobel gradient magnitude of the Gaussian-smoothed
  haematoxylin map (boundaries along stain edges; needs ``h_map`` or
  ``image``).

Only foreground pixels are flooded; foreground components without a
positive marker stay background unless ``keep_unseeded``. Instances
outside ``min_area..max_area`` (50..20000 px) are dropped.

Score: the **solidity** (area / convex-hull area, in ``(0, 1]``) of each
instance stands in for SAM's predicted IoU in the containment-aware soft
NMS: nuclei are convex, so a low solidity flags merged or ragged regions.
"""
from typing import Optional

import numpy as np
from scipy import ndimage as ndi
from skimage.filters import sobel
from skimage.measure import regionprops
from skimage.segmentation import watershed

from nucseg.models.prompters.point_prompts import check_points
from nucseg.registry import TASK_UTILS
from nucseg.utils.labels import relabel_sequential
from nucseg.utils.stain import stain_concentrations
from .candidates import InstanceCandidates

__all__ = ['WatershedMaskGenerator', 'disk_markers', 'refine_instances']

ELEVATIONS = ('distance', 'h_gradient')


def disk_markers(shape, points: np.ndarray, radius: int,
                 labels: np.ndarray, out: Optional[np.ndarray] = None
                 ) -> np.ndarray:
    """Draw labelled disks at points (later points overwrite earlier ones).

    Args:
        shape (tuple[int, int]): ``(H, W)``.
        points (np.ndarray): ``(N, 2)`` ``(x, y)`` centres (rounded).
        radius (int): Disk radius in pixels (0: single pixels).
        labels (np.ndarray): ``(N,)`` positive labels.
        out (np.ndarray, optional): int32 map to draw into.

    Returns:
        np.ndarray: ``HxW`` int32 marker map.
    """
    h, w = shape
    if out is None:
        out = np.zeros((h, w), np.int32)
    r = int(radius)
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    dy, dx = np.nonzero(yy**2 + xx**2 <= r * r)
    dy, dx = dy - r, dx - r
    pts = np.rint(np.asarray(points, np.float64)).astype(np.int64)
    for (x, y), lab in zip(pts, labels):
        ys, xs = y + dy, x + dx
        ok = (ys >= 0) & (ys < h) & (xs >= 0) & (xs < w)
        out[ys[ok], xs[ok]] = lab
    return out


def refine_instances(inst: np.ndarray, fill_holes: bool = True,
                     smooth_sigma: float = 0.0) -> np.ndarray:
    """Fill holes and smooth each instance without touching the others.

    Each instance mask (in its bounding box, padded by ``3 sigma``) is
    hole-filled and/or Gaussian-smoothed and thresholded at 0.5; the result
    may only take pixels that are background or already its own, so
    neighbours never shrink.

    Args:
        inst (np.ndarray): ``HxW`` integer instance map.
        fill_holes (bool): Fill holes of every instance.
        smooth_sigma (float): Gaussian sigma of the shape smoothing.

    Returns:
        np.ndarray: ``HxW`` instance map with the same ids.
    """
    out = np.zeros_like(inst)
    pad = int(3 * smooth_sigma) + 1 if smooth_sigma > 0 else 0
    h, w = inst.shape
    for rp in regionprops(inst):
        mask = rp.image_filled if fill_holes else rp.image
        (y0, x0), (y1, x1) = rp.bbox[:2], rp.bbox[2:]
        if pad:
            mask = ndi.gaussian_filter(
                np.pad(mask.astype(np.float32), pad), smooth_sigma) > 0.5
            y0, x0, y1, x1 = y0 - pad, x0 - pad, y1 + pad, x1 + pad
        cy0, cx0, cy1, cx1 = max(y0, 0), max(x0, 0), min(y1, h), min(x1, w)
        mask = mask[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0]
        sub, own = out[cy0:cy1, cx0:cx1], inst[cy0:cy1, cx0:cx1]
        sub[mask & (sub == 0) & ((own == 0) | (own == rp.label))] = rp.label
    return out


@TASK_UTILS.register_module()
class WatershedMaskGenerator:
    """Instance candidates by marker-controlled watershed of the foreground.

    Args:
        elevation (str): ``'distance'`` (negative distance transform of the
            foreground) or ``'h_gradient'`` (gradient of the smoothed H
            map).
        marker_radius (int): Radius of the point markers (2 px).
        h_sigma (float): Gaussian sigma of the H map for ``'h_gradient'``.
        min_area (int): Smallest kept instance (50 px).
        max_area (int): Largest kept instance (20000 px).
        compactness (float): skimage's compact watershed parameter (0:
            classic watershed).
        keep_unseeded (bool): Keep foreground components without any
            positive marker as instances.
        distance_sigma (float): Gaussian sigma of the distance transform
            for ``'distance'`` (0: raw).
        fill_holes (bool): Fill holes inside each instance.
        smooth_sigma (float): Smooth each instance's shape (Gaussian of
            its mask > 0.5), never taking pixels of another instance; 0
            disables.
    """

    def __init__(self,
                 elevation: str = 'distance',
                 marker_radius: int = 2,
                 h_sigma: float = 1.0,
                 min_area: int = 50,
                 max_area: int = 20000,
                 compactness: float = 0.0,
                 keep_unseeded: bool = False,
                 distance_sigma: float = 0.0,
                 fill_holes: bool = False,
                 smooth_sigma: float = 0.0) -> None:
        if elevation not in ELEVATIONS:
            raise ValueError(f'elevation must be one of {ELEVATIONS}, got '
                             f'{elevation!r}')
        if marker_radius < 0:
            raise ValueError(f'marker_radius must be >= 0, got '
                             f'{marker_radius}')
        if min_area > max_area:
            raise ValueError(f'min_area ({min_area}) > max_area '
                             f'({max_area})')
        self.elevation = elevation
        self.marker_radius = int(marker_radius)
        self.h_sigma = float(h_sigma)
        self.min_area = int(min_area)
        self.max_area = int(max_area)
        self.compactness = float(compactness)
        self.keep_unseeded = bool(keep_unseeded)
        if distance_sigma < 0 or smooth_sigma < 0:
            raise ValueError('distance_sigma and smooth_sigma must be >= 0, '
                             f'got {distance_sigma}, {smooth_sigma}')
        self.distance_sigma = float(distance_sigma)
        self.fill_holes = bool(fill_holes)
        self.smooth_sigma = float(smooth_sigma)

    def elevation_map(self, fg: np.ndarray,
                      image: Optional[np.ndarray] = None,
                      h_map: Optional[np.ndarray] = None) -> np.ndarray:
        """The landscape flooded by the watershed (``HxW`` float)."""
        if self.elevation == 'distance':
            dist = ndi.distance_transform_edt(fg)
            if self.distance_sigma > 0:
                dist = ndi.gaussian_filter(dist, self.distance_sigma)
            return -dist
        if h_map is None:
            if image is None:
                raise ValueError("elevation='h_gradient' needs h_map or "
                                 'image')
            h_map = stain_concentrations(np.asarray(image))[..., 0]
        h = np.asarray(h_map, np.float64)
        if h.shape != fg.shape:
            raise ValueError(f'h_map has shape {h.shape}, fg_mask '
                             f'{fg.shape}')
        if self.h_sigma > 0:
            h = ndi.gaussian_filter(h, self.h_sigma)
        return sobel(h)

    def label_map(self,
                  fg_mask: np.ndarray,
                  pos_points: np.ndarray,
                  neg_points: Optional[np.ndarray] = None,
                  image: Optional[np.ndarray] = None,
                  h_map: Optional[np.ndarray] = None) -> np.ndarray:
        """Watershed instance map (``HxW`` int32, before area filtering).

        Ids follow the positive points (id ``k`` from point ``k - 1``)
        before renumbering to ``1..n``.
        """
        fg = np.asarray(fg_mask, bool)
        if fg.ndim != 2:
            raise ValueError(f'fg_mask must be HxW, got shape {fg.shape}')
        pos = check_points(pos_points, 'pos_points', np.float64)
        neg = check_points(neg_points, 'neg_points', np.float64)
        n = len(pos)
        if (n == 0 and not self.keep_unseeded) or not fg.any():
            return np.zeros(fg.shape, np.int32)
        bg_label = n + 1
        markers = disk_markers(fg.shape, neg, self.marker_radius,
                               np.full(len(neg), bg_label, np.int32))
        markers = disk_markers(fg.shape, pos, self.marker_radius,
                               np.arange(1, n + 1, dtype=np.int32), markers)
        markers[~fg] = 0
        elev = self.elevation_map(fg, image, h_map)
        inst = watershed(
            elev, markers, mask=fg, compactness=self.compactness)
        inst[inst == bg_label] = 0
        if self.keep_unseeded:
            comps, _ = ndi.label(fg & (inst == 0))
            seeded = np.unique(comps[(inst > 0) | (markers == bg_label)])
            comps[np.isin(comps, seeded)] = 0
            inst = np.where(comps > 0, comps + bg_label, inst)
        if self.fill_holes or self.smooth_sigma > 0:
            inst = refine_instances(inst, self.fill_holes, self.smooth_sigma)
        return relabel_sequential(inst)

    def __call__(self,
                 image: Optional[np.ndarray],
                 pos_points: np.ndarray,
                 neg_points: Optional[np.ndarray] = None,
                 fg_mask: Optional[np.ndarray] = None,
                 h_map: Optional[np.ndarray] = None) -> InstanceCandidates:
        """Instance candidates of one image.

        Args:
            image (np.ndarray, optional): ``HxWx3`` uint8 RGB image (used
                by ``'h_gradient'`` when ``h_map`` is not given).
            pos_points (np.ndarray): ``(N, 2)`` positive points ``(x, y)``.
            neg_points (np.ndarray, optional): ``(M, 2)`` negative points.
            fg_mask (np.ndarray): ``HxW`` bool foreground (required).
            h_map (np.ndarray, optional): ``HxW`` haematoxylin map.

        Returns:
            InstanceCandidates: Non-overlapping candidates, scores =
            solidity.
        """
        if fg_mask is None:
            raise ValueError('WatershedMaskGenerator needs fg_mask (the '
                             'foreground of the CRF stage)')
        inst = self.label_map(fg_mask, pos_points, neg_points, image, h_map)
        if inst.any():
            areas = np.bincount(inst.ravel())
            bad = (areas < self.min_area) | (areas > self.max_area)
            bad[0] = False
            if bad.any():
                inst = relabel_sequential(np.where(bad[inst], 0, inst))
        props = regionprops(inst)
        scores = np.array([p.solidity for p in props], np.float64)
        return InstanceCandidates.from_label_map(inst, scores)
