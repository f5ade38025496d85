"""The classical baseline as a model: haematoxylin Otsu + watershed."""
from typing import List, Optional

import numpy as np
import torch
from mmengine.structures import PixelData
from mmseg.models.segmentors import BaseSegmentor
from mmseg.utils import OptConfigType, OptSampleList, SampleList
from skimage.filters import threshold_otsu
from torch import Tensor

from nucseg.models.postprocessors import DistanceWatershed
from nucseg.registry import MODELS, TASK_UTILS
from nucseg.utils.stain import rgb_to_hed

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
class HaematoxylinWatershed(BaseSegmentor):
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

    #: Predicts without trained weights (no checkpoint needed).
    training_free = True

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

    def predict(self,
                inputs: Tensor,
                data_samples: OptSampleList = None) -> SampleList:
        """``pred_instance_map`` and ``pred_sem_seg`` for each image."""
        from nucseg.structures import NucleiDataSample
        if data_samples is None:
            data_samples = [NucleiDataSample() for _ in range(len(inputs))]
        for img_t, sample in zip(inputs, data_samples):
            h, w = sample.metainfo.get('img_shape', img_t.shape[-2:])
            img = img_t[:, :h, :w].detach().permute(1, 2, 0).cpu().numpy()
            img = np.clip(np.rint(img), 0, 255).astype(np.uint8)
            inst = torch.from_numpy(self.segment(img).astype(np.int64))[None]
            sample.pred_instance_map = PixelData(data=inst)
            sample.pred_sem_seg = PixelData(data=(inst > 0).long())
        return data_samples

    def loss(self, inputs: Tensor, data_samples: SampleList) -> dict:
        raise RuntimeError('HaematoxylinWatershed is training-free')

    def _forward(self, inputs: Tensor,
                 data_samples: OptSampleList = None) -> List[np.ndarray]:
        return [self.segment(np.clip(np.rint(
            x.permute(1, 2, 0).cpu().numpy()), 0, 255).astype(np.uint8))
            for x in inputs]

    def extract_feat(self, inputs: Tensor):
        raise NotImplementedError('HaematoxylinWatershed has no features')

    def encode_decode(self, inputs: Tensor, batch_data_samples):
        raise NotImplementedError(
            'HaematoxylinWatershed produces instance maps only')
