"""Loading transforms for the nuclei on-disk convention."""
import numpy as np
from mmcv.transforms import BaseTransform

from nucseg.registry import TRANSFORMS
from nucseg.utils.io import check_pair, read_image, read_label
from nucseg.utils.labels import relabel_sequential


@TRANSFORMS.register_module()
class LoadNucleiImageFromFile(BaseTransform):
    """Load an image as ``HxWx3`` uint8 **RGB**.

    Unlike mmcv's ``LoadImageFromFile`` (BGR), nucseg pipelines carry RGB
    images so that stain operations (H&E deconvolution, HED jitter) see the
    channels they expect; configs set ``bgr_to_rgb=False`` in the data
    preprocessor. Grey, RGBA, palette and 16-bit files are converted (see
    :func:`nucseg.utils.io.to_rgb_uint8`); unreadable files raise
    :class:`nucseg.utils.io.ImageReadError` naming the file.

    Required keys: ``img_path``.
    Added keys: ``img``, ``img_shape``, ``ori_shape``.

    Args:
        to_float32 (bool): Return a float32 image. Defaults to False.
    """

    def __init__(self, to_float32: bool = False) -> None:
        self.to_float32 = to_float32

    def transform(self, results: dict) -> dict:
        img = read_image(results['img_path'])
        if self.to_float32:
            img = img.astype(np.float32)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(to_float32={self.to_float32})'


@TRANSFORMS.register_module()
class LoadInstanceAnnotations(BaseTransform):
    """Load an instance label map and check it against the image.

    Required keys: ``seg_map_path`` (and ``ori_shape`` or ``img`` for the
    size check; with ``ori_shape`` the labels may be loaded after the image
    was resized, as mmseg test pipelines do).
    Added keys: ``gt_instance_map`` (``HxW`` int32), ``seg_fields``.

    Args:
        relabel (bool): Renumber ids to ``1..N`` in raster order, so that
            downstream code may rely on contiguous ids. Defaults to True.
    """

    def __init__(self, relabel: bool = True) -> None:
        self.relabel = relabel

    def transform(self, results: dict) -> dict:
        path = results['seg_map_path']
        inst = read_label(path)
        # Compare with the image as read (``ori_shape``), so that test
        # pipelines may resize the image before loading the labels.
        ref = None
        if 'ori_shape' in results:
            ref = np.empty(tuple(results['ori_shape'][:2]) + (0, ))
        elif 'img' in results:
            ref = results['img']
        if ref is not None:
            check_pair(ref, inst, results.get('img_path', '?'), path)
        if self.relabel:
            inst = relabel_sequential(inst)
        results['gt_instance_map'] = inst
        seg_fields = results.setdefault('seg_fields', [])
        if 'gt_instance_map' not in seg_fields:
            seg_fields.append('gt_instance_map')
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(relabel={self.relabel})'
