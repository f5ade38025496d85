"""Base of the segmentors that predict without trained weights."""
from typing import List

import cv2
import numpy as np
import torch
from mmengine.structures import PixelData
from mmseg.models.segmentors import BaseSegmentor
from mmseg.utils import OptSampleList, SampleList
from torch import Tensor


class TrainingFreeSegmentor(BaseSegmentor):
    """Predict-only segmentor on raw RGB images (SPROUT, the classical
    baseline).

    Subclasses implement :meth:`segment` (``HxWx3`` uint8 RGB ->
    ``HxW`` integer instance map); this base turns it into mmseg's
    ``predict`` / ``_forward`` and refuses ``loss``. ``training_free =
    True`` lets ``tools/test.py`` / ``tools/infer.py`` run it without a
    checkpoint.
    """

    #: Predicts without trained weights (no checkpoint needed).
    training_free = True

    def segment(self, img: np.ndarray) -> np.ndarray:
        """``HxW`` integer instance map of an ``HxWx3`` uint8 RGB image."""
        raise NotImplementedError

    @staticmethod
    def _to_uint8(img: Tensor) -> np.ndarray:
        """``3xHxW`` tensor of raw RGB values -> ``HxWx3`` uint8."""
        arr = img.detach().permute(1, 2, 0).cpu().numpy()
        return np.clip(np.rint(arr), 0, 255).astype(np.uint8)

    def predict(self,
                inputs: Tensor,
                data_samples: OptSampleList = None) -> SampleList:
        """``pred_instance_map`` and ``pred_sem_seg`` for each image, at
        its ``ori_shape`` (nearest resize when the pipeline resized)."""
        from nucseg.structures import NucleiDataSample
        if data_samples is None:
            data_samples = [NucleiDataSample() for _ in range(len(inputs))]
        for img_t, sample in zip(inputs, data_samples):
            h, w = sample.metainfo.get('img_shape', img_t.shape[-2:])
            inst = self.segment(self._to_uint8(img_t[:, :h, :w]))
            ori = sample.metainfo.get('ori_shape', (h, w))
            if tuple(ori[:2]) != inst.shape:
                inst = cv2.resize(
                    inst.astype(np.float32), (int(ori[1]), int(ori[0])),
                    interpolation=cv2.INTER_NEAREST).astype(np.int32)
            inst_t = torch.from_numpy(inst.astype(np.int64))[None]
            sample.pred_instance_map = PixelData(data=inst_t)
            sample.pred_sem_seg = PixelData(data=(inst_t > 0).long())
        return data_samples

    def loss(self, inputs: Tensor, data_samples: SampleList) -> dict:
        raise RuntimeError(
            f'{type(self).__name__} is training-free; evaluate it with '
            'tools/test.py CONFIG (no checkpoint needed)')

    def _forward(self, inputs: Tensor,
                 data_samples: OptSampleList = None) -> List[np.ndarray]:
        return [self.segment(self._to_uint8(x)) for x in inputs]

    def extract_feat(self, inputs: Tensor):
        raise NotImplementedError(
            f'{type(self).__name__} has no feature extractor')

    def encode_decode(self, inputs: Tensor, batch_data_samples):
        raise NotImplementedError(
            f'{type(self).__name__} produces instance maps only')
