"""Operations on instance label maps."""
import numpy as np

from .io import LabelError

__all__ = ['relabel_sequential']


def relabel_sequential(label: np.ndarray) -> np.ndarray:
    """Renumber the non-zero ids of a label map to ``1..N``.

    Ids keep their relative order (the smallest old id becomes 1); 0 stays
    background.

    Args:
        label (np.ndarray): ``HxW`` non-negative integer label map.

    Returns:
        np.ndarray: ``HxW`` int32 map with ids ``1..N``.

    Raises:
        LabelError: If there are more ids than int32 can hold.
    """
    label = np.asarray(label)
    ids, inverse = np.unique(label, return_inverse=True)
    if ids.size and ids[0] == 0:
        new = np.arange(ids.size, dtype=np.int64)
    else:
        new = np.arange(1, ids.size + 1, dtype=np.int64)
    if new.size and new[-1] > np.iinfo(np.int32).max:
        raise LabelError('too many instance ids for int32')
    return new[inverse.reshape(label.shape)].astype(np.int32)
