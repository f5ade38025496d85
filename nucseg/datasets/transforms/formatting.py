"""Packing of nuclei samples into :class:`NucleiDataSample`."""
from typing import Sequence

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmengine.structures import InstanceData, PixelData

from nucseg.registry import TRANSFORMS
from nucseg.structures import NucleiDataSample


@TRANSFORMS.register_module()
class PackNucleiInputs(BaseTransform):
    """Pack image, semantic target, instance map and domain metadata.

    Produces ``dict(inputs=CxHxW uint8 tensor, data_samples=
    NucleiDataSample)``. The data sample carries ``gt_sem_seg`` (from
    ``gt_seg_map``), ``gt_instance_map`` (``1xHxW`` int64), mmdet
    detection targets as ``gt_instances`` (``bboxes``, ``labels``,
    ``masks``; when ``GenerateInstanceTargets`` ran) and the
    ``meta_keys`` present in ``results`` as metainfo (``domain``,
    ``domain_id`` and ``is_primary`` for multi-domain training).

    Args:
        meta_keys (Sequence[str]): Keys copied into the metainfo when
            present.
    """

    def __init__(self,
                 meta_keys: Sequence[str] = (
                     'img_path', 'seg_map_path', 'ori_shape', 'img_shape',
                     'pad_shape', 'scale_factor', 'flip', 'flip_direction',
                     'reduce_zero_label', 'hflip', 'vflip', 'rot90_k',
                     'name', 'domain', 'domain_id', 'is_primary')
                 ) -> None:
        self.meta_keys = tuple(meta_keys)

    def transform(self, results: dict) -> dict:
        img = results['img']
        if img.ndim == 2:
            img = img[..., None]
        inputs = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0,
                                                                     1)))
        sample = NucleiDataSample()
        if 'gt_seg_map' in results:
            seg = results['gt_seg_map']
            sample.gt_sem_seg = PixelData(
                data=torch.from_numpy(seg[None].astype(np.int64)))
        if 'gt_instance_map' in results:
            inst = results['gt_instance_map']
            sample.gt_instance_map = PixelData(
                data=torch.from_numpy(inst[None].astype(np.int64)))
        if 'gt_bboxes' in results:
            sample.gt_instances = InstanceData(
                bboxes=torch.from_numpy(results['gt_bboxes']),
                labels=torch.from_numpy(results['gt_bboxes_labels']),
                masks=results['gt_masks'])
        sample.set_metainfo(
            {k: results[k]
             for k in self.meta_keys if k in results})
        return dict(inputs=inputs, data_samples=sample)

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(meta_keys={self.meta_keys})'
