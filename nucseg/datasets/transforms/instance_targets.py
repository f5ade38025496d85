"""Box and mask targets of detectors (Mask R-CNN) from instance maps."""
import numpy as np
from mmcv.transforms import BaseTransform
from scipy import ndimage as ndi

from nucseg.registry import TRANSFORMS

__all__ = ['GenerateInstanceTargets', 'instance_boxes_and_masks']


def instance_boxes_and_masks(inst: np.ndarray, min_size: int = 1):
    """Boxes and binary masks of every instance of a label map.

    Args:
        inst (np.ndarray): ``H x W`` integer instance map (0 = background,
            ids need not be contiguous).
        min_size (int): Drop instances whose box is narrower or shorter
            than this many pixels (1 keeps all).

    Returns:
        tuple: ``(N, 4)`` float32 boxes ``(x1, y1, x2, y2)`` with exclusive
        right/bottom edges (``x2 = last column + 1``), ``N x H x W`` uint8
        masks and the ``(N,)`` int64 instance ids, in increasing id order.
    """
    inst = np.asarray(inst)
    if inst.ndim != 2:
        raise ValueError(f'instance map must be H x W, got {inst.shape}')
    h, w = inst.shape
    boxes, masks, kept = [], [], []
    for k, sl in enumerate(ndi.find_objects(inst.astype(np.int64))):
        if sl is None:
            continue
        obj_id = k + 1
        y0, y1, x0, x1 = sl[0].start, sl[0].stop, sl[1].start, sl[1].stop
        if min(y1 - y0, x1 - x0) < min_size:
            continue
        mask = np.zeros((h, w), dtype=np.uint8)
        mask[sl] = inst[sl] == obj_id
        boxes.append((x0, y0, x1, y1))
        masks.append(mask)
        kept.append(obj_id)
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    masks = np.stack(masks) if masks else np.zeros((0, h, w), np.uint8)
    return boxes, masks, np.asarray(kept, dtype=np.int64)


@TRANSFORMS.register_module()
class GenerateInstanceTargets(BaseTransform):
    """mmdet detection targets from ``gt_instance_map``.

    Run it after every geometric augmentation (crops cut nuclei, flips
    move them). ``PackNucleiInputs`` packs the result as the data
    sample's ``gt_instances`` (``bboxes``, ``labels`` all 0 = "nucleus",
    ``masks`` as mmdet ``BitmapMasks``), which mmdet's
    ``DetDataPreprocessor`` and ``MaskRCNN.loss`` consume.

    Required keys: ``gt_instance_map``.
    Added keys: ``gt_bboxes`` (N x 4 float32), ``gt_bboxes_labels`` (N,
    int64), ``gt_masks`` (BitmapMasks), ``gt_ignore_flags`` (N, bool).

    Args:
        min_size (int): Drop instances with a box side below this (pixels).
    """

    def __init__(self, min_size: int = 1) -> None:
        if min_size < 1:
            raise ValueError(f'min_size must be >= 1, got {min_size}')
        self.min_size = min_size

    def transform(self, results: dict) -> dict:
        from mmdet.structures.mask import BitmapMasks
        if 'gt_instance_map' not in results:
            raise KeyError(
                'GenerateInstanceTargets needs gt_instance_map: put '
                'LoadInstanceAnnotations before it '
                f"({results.get('img_path', '?')})")
        inst = results['gt_instance_map']
        boxes, masks, _ = instance_boxes_and_masks(inst, self.min_size)
        results['gt_bboxes'] = boxes
        results['gt_bboxes_labels'] = np.zeros(len(boxes), dtype=np.int64)
        results['gt_ignore_flags'] = np.zeros(len(boxes), dtype=bool)
        results['gt_masks'] = BitmapMasks(masks, *inst.shape)
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(min_size={self.min_size})'
