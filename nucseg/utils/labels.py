"""Operations on instance label maps."""
from typing import Tuple

import numpy as np

from .io import LabelError

__all__ = ['dense_index', 'relabel_sequential']

# Ids up to this bound (or up to 4x the pixel count) are renumbered with a
# look-up table; larger ids fall back to sorting with ``np.unique``.
_LUT_MAX_ID = 1 << 22


def dense_index(label: np.ndarray) -> Tuple[np.ndarray, int]:
    """Renumber a non-negative label map to 0..n, order of ids preserved.

    The fast path used by the instance metrics and by
    :func:`relabel_sequential`: a look-up table built with ``np.bincount``
    (linear time) instead of sorting.

    Args:
        label (np.ndarray): Non-negative integer label map, any shape.

    Returns:
        tuple[np.ndarray, int]: The flattened renumbered map (integer
        dtype castable to intp, 0 stays background, the k-th smallest
        positive id becomes k) and the number n of instances.
    """
    flat = np.asarray(label).ravel()
    if flat.size == 0:
        return np.zeros(0, np.intp), 0
    max_id = int(flat.max())
    if max_id <= max(_LUT_MAX_ID, 4 * flat.size):
        if not np.can_cast(flat.dtype, np.intp):
            flat = flat.astype(np.intp)
        present = np.bincount(flat, minlength=max_id + 1) > 0
        present[0] = False
        lut = np.cumsum(present, dtype=np.intp)
        n = int(lut[-1])
        if n == max_id:  # already 1..n: no renumbering needed
            return flat, n
        return lut[flat], n
    ids, inverse = np.unique(flat, return_inverse=True)
    inverse = inverse.astype(np.intp, copy=False).ravel()
    if ids[0] != 0:
        inverse += 1
    return inverse, int(np.count_nonzero(ids))


def relabel_sequential(label: np.ndarray) -> np.ndarray:
    """Renumber the non-zero ids of a label map to ``1..N``.

    Ids keep their relative order (the smallest old id becomes 1); 0 stays
    background.

    Args:
        label (np.ndarray): ``HxW`` non-negative integer label map.

    Returns:
        np.ndarray: ``HxW`` int32 map with ids ``1..N`` (a new array).

    Raises:
        LabelError: If ids are negative or more than int32 can hold.
    """
    label = np.asarray(label)
    if label.size and label.min() < 0:
        raise LabelError(f'negative instance ids (min {label.min()})')
    index, n = dense_index(label)
    if n > np.iinfo(np.int32).max:
        raise LabelError('too many instance ids for int32')
    return index.reshape(label.shape).astype(np.int32, copy=True)
