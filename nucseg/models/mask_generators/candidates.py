"""A compact container of (possibly overlapping) instance-mask candidates.

SPROUT's mask stage produces one mask per prompt, many of them for the
same nucleus (a nucleus with several positive points, patches that
overlap). A stack of ``N x H x W`` boolean masks would cost about 1 GB for
a 1000 x 1000 image with ~1000 nuclei, so each candidate is kept as its
bounding box plus a boolean crop of that box.

Boxes are ``(x0, y0, x1, y1)`` in image pixels with **exclusive** ends, so
candidate ``i`` covers ``mask[y0:y1, x0:x1] = crops[i]``. Crops built by
:meth:`InstanceCandidates.from_masks` / :meth:`from_label_map` are tight
(their boxes are the masks' bounding boxes); an empty candidate has a box
of zero size.
"""
from dataclasses import dataclass, field
from typing import Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np
from scipy import ndimage as ndi

from nucseg.utils.labels import relabel_sequential

__all__ = [
    'InstanceCandidates', 'tight_crop', 'bbox_overlap_pairs', 'pair_box_iou',
    'pair_box_intersection'
]

IndexLike = Union[Sequence[int], np.ndarray, slice]


def tight_crop(mask: np.ndarray,
               offset: Tuple[int, int] = (0, 0)
               ) -> Tuple[np.ndarray, np.ndarray]:
    """Bounding box and crop of a boolean mask.

    Args:
        mask (np.ndarray): ``hxw`` boolean mask.
        offset (tuple[int, int]): ``(x, y)`` added to the box (the position
            of ``mask`` in a larger image).

    Returns:
        tuple[np.ndarray, np.ndarray]: Box ``(4,)`` int64 ``x0, y0, x1,
        y1`` (exclusive ends; all ``offset`` coordinates for an empty mask)
        and the ``(y1 - y0) x (x1 - x0)`` boolean crop.
    """
    mask = np.asarray(mask, dtype=bool)
    rows = np.flatnonzero(mask.any(1))
    if rows.size == 0:
        box = np.array([offset[0], offset[1]] * 2, np.int64)
        return box, np.zeros((0, 0), bool)
    cols = np.flatnonzero(mask.any(0))
    y0, y1 = int(rows[0]), int(rows[-1]) + 1
    x0, x1 = int(cols[0]), int(cols[-1]) + 1
    box = np.array([x0 + offset[0], y0 + offset[1], x1 + offset[0],
                    y1 + offset[1]], np.int64)
    return box, np.ascontiguousarray(mask[y0:y1, x0:x1])


def bbox_overlap_pairs(boxes: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """All pairs ``i < j`` of boxes whose interiors intersect.

    Sort-and-sweep along x (vectorised): boxes sorted by ``x0``; box ``i``
    can only meet the boxes that start before it ends; those pairs are then
    tested for overlap along y.

    Args:
        boxes (np.ndarray): ``(N, 4)`` ``x0, y0, x1, y1`` with exclusive
            ends.

    Returns:
        tuple[np.ndarray, np.ndarray]: Index arrays ``i`` and ``j`` (int64,
        ``i < j``) of the overlapping pairs, sorted by ``(i, j)``.
    """
    boxes = np.asarray(boxes, np.int64).reshape(-1, 4)
    n = len(boxes)
    if n < 2:
        empty = np.zeros(0, np.int64)
        return empty, empty
    order = np.argsort(boxes[:, 0], kind='stable')
    b = boxes[order]
    # For sorted box k, partners are k+1 .. end[k]-1 (x0 < x1 of box k).
    end = np.searchsorted(b[:, 0], b[:, 2], side='left')
    count = np.maximum(end - np.arange(n) - 1, 0)
    total = int(count.sum())
    if total == 0:
        empty = np.zeros(0, np.int64)
        return empty, empty
    a = np.repeat(np.arange(n), count)
    # Position of each pair inside its run gives the partner offset.
    starts = np.cumsum(count) - count
    c = a + 1 + (np.arange(total) - np.repeat(starts, count))
    keep = ((np.minimum(b[a, 2], b[c, 2]) > np.maximum(b[a, 0], b[c, 0]))
            & (np.minimum(b[a, 3], b[c, 3]) > np.maximum(b[a, 1], b[c, 1])))
    i, j = order[a[keep]], order[c[keep]]
    lo, hi = np.minimum(i, j), np.maximum(i, j)
    srt = np.lexsort((hi, lo))
    return lo[srt].astype(np.int64), hi[srt].astype(np.int64)


def pair_box_intersection(boxes: np.ndarray, i: np.ndarray,
                          j: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Width and height of the intersection of the boxes of pairs ``(i, j)``.

    Args:
        boxes (np.ndarray): ``(N, 4)`` ``x0, y0, x1, y1``, exclusive ends.
        i, j (np.ndarray): Index arrays of equal length.

    Returns:
        tuple[np.ndarray, np.ndarray]: int64 width and height per pair
        (``<= 0`` for boxes that do not intersect along that axis).
    """
    b = np.asarray(boxes, np.int64).reshape(-1, 4)
    iw = np.minimum(b[i, 2], b[j, 2]) - np.maximum(b[i, 0], b[j, 0])
    ih = np.minimum(b[i, 3], b[j, 3]) - np.maximum(b[i, 1], b[j, 1])
    return iw, ih


def pair_box_iou(boxes: np.ndarray, i: np.ndarray,
                 j: np.ndarray) -> np.ndarray:
    """IoU of the boxes of the pairs ``(i[k], j[k])``.

    Args:
        boxes (np.ndarray): ``(N, 4)`` ``x0, y0, x1, y1``, exclusive ends.
        i, j (np.ndarray): Index arrays of equal length.

    Returns:
        np.ndarray: float64 IoU per pair (0 for disjoint boxes).
    """
    b = np.asarray(boxes, np.int64).reshape(-1, 4)
    iw, ih = pair_box_intersection(b, i, j)
    inter = np.maximum(iw, 0) * np.maximum(ih, 0)
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area[i] + area[j] - inter, 1)


@dataclass
class InstanceCandidates:
    """``N`` instance-mask candidates of one image, stored sparsely.

    Args:
        boxes (np.ndarray): ``(N, 4)`` int64 boxes ``x0, y0, x1, y1`` with
            exclusive ends, inside the image.
        crops (list[np.ndarray]): ``N`` boolean arrays, crop ``i`` of shape
            ``(y1 - y0, x1 - x0)`` of box ``i``.
        scores (np.ndarray): ``(N,)`` float64 candidate scores.
        image_shape (tuple[int, int]): ``(H, W)`` of the image.

    Raises:
        ValueError: When shapes do not agree or a box leaves the image.
    """

    boxes: np.ndarray
    crops: List[np.ndarray]
    scores: np.ndarray
    image_shape: Tuple[int, int]
    _areas: Optional[np.ndarray] = field(
        default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.image_shape = tuple(int(s) for s in self.image_shape)
        if len(self.image_shape) != 2 or min(self.image_shape) < 0:
            raise ValueError(f'image_shape must be (H, W), got '
                             f'{self.image_shape}')
        self.boxes = np.asarray(self.boxes, np.int64).reshape(-1, 4)
        self.crops = [np.asarray(c, dtype=bool) for c in self.crops]
        self.scores = np.asarray(self.scores, np.float64).reshape(-1)
        n = len(self.boxes)
        if len(self.crops) != n or len(self.scores) != n:
            raise ValueError(
                f'boxes ({n}), crops ({len(self.crops)}) and scores '
                f'({len(self.scores)}) must have the same length')
        if n:
            h, w = self.image_shape
            b = self.boxes
            if ((b[:, 0] < 0).any() or (b[:, 1] < 0).any()
                    or (b[:, 2] > w).any() or (b[:, 3] > h).any()
                    or (b[:, 2] < b[:, 0]).any() or (b[:, 3] < b[:, 1]).any()):
                raise ValueError(f'boxes must lie inside the {h}x{w} image '
                                 'with x0 <= x1, y0 <= y1')
            for k, (c, bb) in enumerate(zip(self.crops, b)):
                if c.shape != (bb[3] - bb[1], bb[2] - bb[0]):
                    raise ValueError(
                        f'crops[{k}] has shape {c.shape}, box {bb.tolist()} '
                        f'needs {(bb[3] - bb[1], bb[2] - bb[0])}')

    # ------------------------------------------------------------------
    # construction
    @classmethod
    def empty(cls, image_shape: Tuple[int, int]) -> 'InstanceCandidates':
        """No candidates."""
        return cls(np.zeros((0, 4), np.int64), [], np.zeros(0), image_shape)

    @classmethod
    def from_masks(cls,
                   masks: Iterable[np.ndarray],
                   scores: Optional[Sequence[float]] = None,
                   image_shape: Optional[Tuple[int, int]] = None,
                   offset: Tuple[int, int] = (0, 0)
                   ) -> 'InstanceCandidates':
        """From full-size (or offset) boolean masks (kept as tight crops).

        Args:
            masks (Iterable[np.ndarray]): ``hxw`` boolean masks (or an
                ``Nxhxw`` array).
            scores (Sequence[float], optional): Defaults to ones.
            image_shape (tuple[int, int], optional): Defaults to the shape
                of the masks (required when there is none).
            offset (tuple[int, int]): ``(x, y)`` position of the masks in
                the image.
        """
        boxes, crops = [], []
        for m in masks:
            m = np.asarray(m, dtype=bool)
            if image_shape is None:
                image_shape = m.shape
            box, crop = tight_crop(m, offset)
            boxes.append(box)
            crops.append(crop)
        if image_shape is None:
            raise ValueError('image_shape is required without masks')
        if scores is None:
            scores = np.ones(len(crops))
        return cls(np.array(boxes, np.int64).reshape(-1, 4), crops,
                   np.asarray(scores, np.float64), image_shape)

    @classmethod
    def from_label_map(cls,
                       label: np.ndarray,
                       scores: Optional[Sequence[float]] = None
                       ) -> 'InstanceCandidates':
        """One candidate per id ``1..max`` present in ``label``.

        Args:
            label (np.ndarray): ``HxW`` non-negative integer label map.
            scores (Sequence[float], optional): One score per present id in
                increasing id order. Defaults to ones.
        """
        label = np.asarray(label)
        if label.ndim != 2:
            raise ValueError(f'label must be HxW, got shape {label.shape}')
        if label.size and label.min() < 0:
            raise ValueError('label has negative ids')
        boxes, crops = [], []
        for k, sl in enumerate(ndi.find_objects(label.astype(np.intp))):
            if sl is None:
                continue
            crops.append(np.ascontiguousarray(label[sl] == k + 1))
            boxes.append([sl[1].start, sl[0].start, sl[1].stop,
                          sl[0].stop])
        if scores is None:
            scores = np.ones(len(crops))
        scores = np.asarray(scores, np.float64).reshape(-1)
        if len(scores) != len(crops):
            raise ValueError(f'scores has {len(scores)} entries for '
                             f'{len(crops)} instances')
        return cls(np.array(boxes, np.int64).reshape(-1, 4), crops, scores,
                   label.shape)

    @classmethod
    def concatenate(cls, parts: Sequence['InstanceCandidates'],
                    image_shape: Optional[Tuple[int, int]] = None
                    ) -> 'InstanceCandidates':
        """Join candidates of the same image (in the given order)."""
        if image_shape is None:
            if not parts:
                raise ValueError('image_shape is required without parts')
            image_shape = parts[0].image_shape
        for p in parts:
            if tuple(p.image_shape) != tuple(image_shape):
                raise ValueError(f'cannot join candidates of images '
                                 f'{p.image_shape} and {image_shape}')
        if not parts:
            return cls.empty(image_shape)
        return cls(
            np.concatenate([p.boxes for p in parts]).reshape(-1, 4),
            [c for p in parts for c in p.crops],
            np.concatenate([p.scores for p in parts]), image_shape)

    # ------------------------------------------------------------------
    # basic properties
    def __len__(self) -> int:
        return len(self.crops)

    @property
    def areas(self) -> np.ndarray:
        """``(N,)`` int64 pixel counts."""
        if self._areas is None:
            self._areas = np.array(
                [np.count_nonzero(c) for c in self.crops], np.int64)
        return self._areas

    def mask(self, i: int) -> np.ndarray:
        """Full ``HxW`` boolean mask of candidate ``i``."""
        out = np.zeros(self.image_shape, bool)
        x0, y0, x1, y1 = self.boxes[i]
        out[y0:y1, x0:x1] = self.crops[i]
        return out

    def select(self, idx: IndexLike) -> 'InstanceCandidates':
        """Candidates ``idx`` (indices, boolean mask or slice), in order."""
        if isinstance(idx, slice):
            idx = np.arange(len(self))[idx]
        idx = np.asarray(idx)
        if idx.dtype == bool:
            if idx.shape != (len(self), ):
                raise ValueError(f'boolean index of shape {idx.shape} for '
                                 f'{len(self)} candidates')
            idx = np.flatnonzero(idx)
        idx = idx.astype(np.int64).reshape(-1)
        out = InstanceCandidates(self.boxes[idx],
                                 [self.crops[k] for k in idx],
                                 self.scores[idx], self.image_shape)
        if self._areas is not None:
            out._areas = self._areas[idx]
        return out

    def with_scores(self, scores: Sequence[float]) -> 'InstanceCandidates':
        """The same masks with new scores."""
        out = InstanceCandidates(self.boxes, self.crops, scores,
                                 self.image_shape)
        out._areas = self._areas
        return out

    def translate(self, offset: Tuple[int, int],
                  image_shape: Tuple[int, int]) -> 'InstanceCandidates':
        """Move boxes by ``(x, y)`` into an image of ``image_shape``.

        Masks are clipped to the new image (and re-tightened when
        clipped); a candidate may become empty.
        """
        dx, dy = int(offset[0]), int(offset[1])
        h, w = int(image_shape[0]), int(image_shape[1])
        boxes, crops = [], []
        for c, (x0, y0, x1, y1) in zip(self.crops, self.boxes):
            x0, x1, y0, y1 = x0 + dx, x1 + dx, y0 + dy, y1 + dy
            cx0, cy0 = max(x0, 0), max(y0, 0)
            cx1, cy1 = min(x1, w), min(y1, h)
            if (cx0, cy0, cx1, cy1) == (x0, y0, x1, y1):
                boxes.append([x0, y0, x1, y1])
                crops.append(c)
                continue
            if cx1 <= cx0 or cy1 <= cy0:
                box, crop = np.array([0, 0, 0, 0]), np.zeros((0, 0), bool)
            else:
                box, crop = tight_crop(
                    c[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0], (cx0, cy0))
            boxes.append(box)
            crops.append(crop)
        return InstanceCandidates(
            np.array(boxes, np.int64).reshape(-1, 4), crops, self.scores,
            (h, w))

    # ------------------------------------------------------------------
    # conversion
    def to_label_map(self, order: str = 'score') -> np.ndarray:
        """Paint the candidates into one ``HxW`` instance map.

        Args:
            order (str): ``'score'`` paints lower scores first, so that a
                higher-score mask wins where masks overlap (ties: the later
                candidate wins); ``'index'`` paints in candidate order (the
                last one wins).

        Returns:
            np.ndarray: ``HxW`` int32 map, ids ``1..n`` in candidate order
            (a candidate entirely covered by others disappears).
        """
        if order == 'score':
            paint = np.argsort(self.scores, kind='stable')
        elif order == 'index':
            paint = np.arange(len(self))
        else:
            raise ValueError(f"order must be 'score' or 'index', got "
                             f'{order!r}')
        out = np.zeros(self.image_shape, np.int32)
        for k in paint:
            x0, y0, x1, y1 = self.boxes[k]
            view = out[y0:y1, x0:x1]
            view[self.crops[k]] = k + 1
        return relabel_sequential(out)

    # ------------------------------------------------------------------
    # pairwise geometry
    def pairwise_overlap(self, include_disjoint: bool = False
                         ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Intersection pixel counts of all overlapping pairs.

        Box pairs are found by a vectorised sweep
        (:func:`bbox_overlap_pairs`); the masks of those pairs are then
        intersected inside the common box.

        Args:
            include_disjoint (bool): Also return the pairs whose boxes
                intersect but whose masks share no pixel (``inter = 0``).

        Returns:
            tuple[np.ndarray, np.ndarray, np.ndarray]: ``i``, ``j`` (int64,
            ``i < j``, sorted) and ``inter`` (int64) for every pair of
            candidates sharing at least one pixel (or, with
            ``include_disjoint``, at least a box overlap).
        """
        i, j = bbox_overlap_pairs(self.boxes)
        if i.size == 0:
            return i, j, np.zeros(0, np.int64)
        b = self.boxes
        ix0 = np.maximum(b[i, 0], b[j, 0])
        iy0 = np.maximum(b[i, 1], b[j, 1])
        ix1 = np.minimum(b[i, 2], b[j, 2])
        iy1 = np.minimum(b[i, 3], b[j, 3])
        # Window offsets inside each crop.
        ai0, ai1 = iy0 - b[i, 1], iy1 - b[i, 1]
        aj0, aj1 = iy0 - b[j, 1], iy1 - b[j, 1]
        bi0, bi1 = ix0 - b[i, 0], ix1 - b[i, 0]
        bj0, bj1 = ix0 - b[j, 0], ix1 - b[j, 0]
        crops = self.crops
        inter = np.fromiter(
            (np.count_nonzero(crops[p][ai0[k]:ai1[k], bi0[k]:bi1[k]]
                              & crops[q][aj0[k]:aj1[k], bj0[k]:bj1[k]])
             for k, (p, q) in enumerate(zip(i.tolist(), j.tolist()))),
            dtype=np.int64, count=len(i))
        if include_disjoint:
            return i, j, inter
        keep = inter > 0
        return i[keep], j[keep], inter[keep]

    def pairwise_iou(self) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Mask IoU of all overlapping pairs (``i < j``, IoU > 0)."""
        i, j, inter = self.pairwise_overlap()
        a = self.areas
        union = a[i] + a[j] - inter
        return i, j, inter / np.maximum(union, 1)

    def box_iou_pairs(self) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Box IoU of all pairs of intersecting boxes (``i < j``)."""
        i, j = bbox_overlap_pairs(self.boxes)
        return i, j, pair_box_iou(self.boxes, i, j)

    def mean_in_masks(self, values: np.ndarray) -> np.ndarray:
        """Mean of an ``HxW`` map inside each mask (0 for empty masks)."""
        values = np.asarray(values)
        if values.shape != tuple(self.image_shape):
            raise ValueError(f'values has shape {values.shape}, expected '
                             f'{self.image_shape}')
        out = np.zeros(len(self), np.float64)
        for k, (c, (x0, y0, x1, y1)) in enumerate(zip(self.crops,
                                                      self.boxes)):
            if c.size:
                sel = values[y0:y1, x0:x1][c]
                if sel.size:
                    out[k] = float(sel.mean(dtype=np.float64))
        return out
