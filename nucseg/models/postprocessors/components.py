"""Connected components of a foreground probability map (mitochondria)."""
import numpy as np
from scipy import ndimage as ndi

from nucseg.registry import TASK_UTILS
from .watershed import ArrayLike, _finish, _to_numpy

__all__ = ['ConnectedComponents']


@TASK_UTILS.register_module()
class ConnectedComponents:
    """Instances = connected components of the thresholded foreground.

    Suited to objects that rarely touch within a section, such as
    mitochondria in EM (the instance convention of nucseg's EM converters).
    Foreground probability: the only channel, or the sum of channels 1..
    (channel 0 is background).

    Args:
        fg_thresh (float): Foreground probability threshold.
        connectivity (int): 4 or 8.
        min_area (int): Smaller components are removed.
    """

    def __init__(self,
                 fg_thresh: float = 0.5,
                 connectivity: int = 4,
                 min_area: int = 1) -> None:
        if connectivity not in (4, 8):
            raise ValueError(f'connectivity must be 4 or 8, got '
                             f'{connectivity}')
        self.fg_thresh = float(fg_thresh)
        self.connectivity = connectivity
        self.min_area = int(min_area)

    def __call__(self, probs: ArrayLike) -> np.ndarray:
        p = _to_numpy(probs)
        if p.shape[0] == 1:
            fg = p[0] > self.fg_thresh
        else:
            fg = p[1:].sum(0) > self.fg_thresh
        structure = ndi.generate_binary_structure(
            2, 1 if self.connectivity == 4 else 2)
        inst, _ = ndi.label(fg, structure=structure)
        return _finish(inst.astype(np.int32), self.min_area)
