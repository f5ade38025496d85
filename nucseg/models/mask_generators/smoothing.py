"""Per-mask clean-up of SAM's masks (SPROUT official ``keep_and_smooth``).

SAM sometimes returns a mask in several pieces (a nucleus plus specks of
nearby tissue). The SPROUT authors' code (``project/utils/mask_check.py``,
``keep_and_smooth``, applied to every SAM mask before filtering) keeps the
largest 4-connected piece of such a mask, closes and then opens it with a
disk of radius 2 and fills its holes. A mask that is already in one piece
is returned unchanged by that code; ``only_fragmented=False`` smooths
every mask.
"""
import numpy as np
from scipy import ndimage as ndi
from skimage.morphology import disk

from .candidates import InstanceCandidates, tight_crop

__all__ = ['keep_largest_and_smooth', 'smooth_candidates']

_FOUR = ndi.generate_binary_structure(2, 1)


def keep_largest_and_smooth(mask: np.ndarray,
                            radius: int = 2,
                            only_fragmented: bool = True) -> np.ndarray:
    """Largest 4-connected piece, closed, opened and hole-filled.

    The morphology runs on a zero-padded copy, so a mask touching the
    border of ``mask``'s array behaves as if surrounded by background (a
    crop of a larger image is smoothed like the image itself).

    Args:
        mask (np.ndarray): ``hxw`` boolean mask.
        radius (int): Radius of the disk of the closing and opening (2).
        only_fragmented (bool): Return a mask of at most one piece as it is
            (the authors' behaviour).

    Returns:
        np.ndarray: ``hxw`` boolean mask (maybe empty: an opening can
        remove a thin piece entirely).
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f'mask must be 2-D, got shape {mask.shape}')
    if radius < 0:
        raise ValueError(f'radius must be >= 0, got {radius}')
    labels, num = ndi.label(mask, structure=_FOUR)
    if num == 0 or (num == 1 and only_fragmented):
        return mask
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    core = labels == int(sizes.argmax())
    if radius:
        pad = radius + 1
        core = np.pad(core, pad)
        footprint = disk(radius).astype(bool)
        core = ndi.binary_closing(core, structure=footprint)
        core = ndi.binary_opening(core, structure=footprint)
        core = core[pad:-pad, pad:-pad]
    return ndi.binary_fill_holes(core)


def smooth_candidates(cands: InstanceCandidates,
                      radius: int = 2,
                      only_fragmented: bool = True) -> InstanceCandidates:
    """:func:`keep_largest_and_smooth` on every candidate.

    Closing, opening and hole filling of one piece never leave its
    bounding box, so each result is re-tightened inside its old box.

    Args:
        cands (InstanceCandidates): Candidates of one image or patch.
        radius (int): Disk radius of the closing / opening.
        only_fragmented (bool): See :func:`keep_largest_and_smooth`.

    Returns:
        InstanceCandidates: Same order and scores (boxes may shrink; a
        candidate may become empty).
    """
    boxes, crops = [], []
    for crop, (x0, y0, _, _) in zip(cands.crops, cands.boxes):
        box, crop = tight_crop(
            keep_largest_and_smooth(crop, radius, only_fragmented),
            (int(x0), int(y0)))
        boxes.append(box)
        crops.append(crop)
    return InstanceCandidates(
        np.array(boxes, np.int64).reshape(-1, 4), crops, cands.scores,
        cands.image_shape)
