"""The classical baseline as a model: haematoxylin Otsu + watershed."""
from typing import Optional

import numpy as np
from mmseg.utils import OptConfigType
from skimage.filters import threshold_otsu

from nucseg.models.postprocessors import DistanceWatershed
from nucseg.registry import MODELS, TASK_UTILS
from nucseg.utils.stain import rgb_to_hed
from .training_free import TrainingFreeSegmentor

__all__ = ['HaematoxylinWatershed', 'haematoxylin_foreground']


def haematoxylin_foreground(img: np.ndarray,
                            threshold: Optional[float] = None
                            ) -> np.ndarray:
    """Pixels whose haematoxylin concentration exceeds a threshold.

    Args:
        img (np.ndarray): ``HxWx3`` uint8 RGB.
        threshold (float, optional): Absolute threshold on the Ruifrok
            haematoxylin optical density; ``None`` uses Otsu's threshold of
            the image.

    Returns:
        np.ndarray: ``HxW`` bool.
    """
    h = rgb_to_hed(img)[..., 0]
    if threshold is None:
        if h.max() - h.min() < 1e-6:
            return np.zeros(h.shape, bool)
        threshold = threshold_otsu(h)
    return h > threshold


@MODELS.register_module()
class HaematoxylinWatershed(TrainingFreeSegmentor):
    """Haematoxylin threshold + distance-transform watershed (predict only).

    The classical baseline the learned and training-free methods are
    compared with (``tools/analysis_tools/benchmark_sprout.py``,
    ``benchmark_tiled_inference.py``): Ruifrok colour deconvolution,
    Otsu's threshold on the haematoxylin channel (or a fixed one), and
    :class:`~nucseg.models.postprocessors.DistanceWatershed` to split
    touching nuclei. Training-free and fast, it is also the cheap model of
    the tiled-inference tests: with a fixed ``threshold`` every step is
    local, so tiled and whole-image predictions agree away from the image
    border.

    Args:
        threshold (float, optional): Fixed haematoxylin threshold; ``None``
            (default) uses Otsu per image (per tile in tiled inference).
        postprocessor (dict, optional): ``DistanceWatershed`` arguments
            (``min_distance``, ``peak_thresh``, ``min_area``,
            ``hole_area``); defaults ``min_area=30, hole_area=40``.
        data_preprocessor (dict, optional): Should keep raw RGB values.
    """

    def __init__(self,
                 threshold: Optional[float] = None,
                 postprocessor: Optional[dict] = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptConfigType = None) -> None:
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.threshold = threshold
        args = dict(type='DistanceWatershed', min_area=30, hole_area=40)
        args.update(postprocessor or {})
        if args['type'] != 'DistanceWatershed':
            raise ValueError('HaematoxylinWatershed.postprocessor must be a '
                             f"DistanceWatershed, got {args['type']!r}")
        # Built through the registry: a misspelt key fails with its name.
        self.postprocessor: DistanceWatershed = TASK_UTILS.build(args)

    def segment(self, img: np.ndarray) -> np.ndarray:
        """``HxW`` int32 instance map of an ``HxWx3`` uint8 RGB image."""
        return self.postprocessor.split(
            haematoxylin_foreground(img, self.threshold))
