"""Data sample carrying instance maps and domain metadata."""
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample


class NucleiDataSample(SegDataSample):
    """:class:`SegDataSample` with nuclei instance maps.

    Fields, in addition to mmseg's ``gt_sem_seg``, ``pred_sem_seg`` and
    ``seg_logits``:

    - ``gt_instance_map`` (PixelData): ``data`` is a ``1xHxW`` int64 tensor,
      0 = background, one positive id per nucleus.
    - ``pred_instance_map`` (PixelData): the predicted instance map, same
      layout, at the original image size.

    Domain metadata travel in ``metainfo``: ``domain`` (str), ``domain_id``
    (int) and ``is_primary`` (bool).
    """

    @property
    def gt_instance_map(self) -> PixelData:
        return self._gt_instance_map

    @gt_instance_map.setter
    def gt_instance_map(self, value: PixelData) -> None:
        self.set_field(value, '_gt_instance_map', dtype=PixelData)

    @gt_instance_map.deleter
    def gt_instance_map(self) -> None:
        del self._gt_instance_map

    @property
    def pred_instance_map(self) -> PixelData:
        return self._pred_instance_map

    @pred_instance_map.setter
    def pred_instance_map(self, value: PixelData) -> None:
        self.set_field(value, '_pred_instance_map', dtype=PixelData)

    @pred_instance_map.deleter
    def pred_instance_map(self) -> None:
        del self._pred_instance_map
