"""mmengine metric: nuclei instance metrics averaged over images."""
from typing import Any, Dict, Optional, Sequence, Union

from nucseg.registry import METRICS
from ..functional import INSTANCE_METRIC_NAMES, instance_metrics
from .per_image_metric import PerImageMetric, get_map

__all__ = ['InstanceMetric']


@METRICS.register_module()
class InstanceMetric(PerImageMetric):
    """AJI, AJI+, DQ, SQ, PQ, Dice and object F1, per image then averaged.

    Each image is scored with
    :func:`nucseg.evaluation.functional.instance_metrics` (HoVer-Net
    definitions) and the reported value is the mean over images, as in
    HoVer-Net's ``compute_stats``. Scores are fractions in [0, 1].

    Every data sample must hold ``pred_instance_map`` and
    ``gt_instance_map`` (``PixelData`` with ``data`` of shape (1, H, W),
    integer, 0 = background, one id per nucleus).

    Args:
        metrics (str | Sequence[str]): Scores to report, any of ``'aji'``,
            ``'aji_plus'``, ``'dq'``, ``'sq'``, ``'pq'``, ``'dice'``,
            ``'obj_f1'``. Defaults to all of them.
        match_iou (float): IoU threshold of a match for DQ / SQ / PQ /
            object F1. Defaults to 0.5.
        collect_device (str): Device to collect results across ranks.
            Defaults to ``'cpu'``.
        prefix (str, optional): Prefix of the metric names. Defaults to
            None.
        output_file (str, optional): CSV path for per-image scores (also
            ``tp``, ``fp``, ``fn`` per image). Defaults to None.

    Example:
        >>> val_evaluator = dict(type='InstanceMetric',
        ...                      metrics=('aji', 'pq', 'dice'))
    """

    METRIC_NAMES = INSTANCE_METRIC_NAMES
    EXTRA_COLUMNS = ('tp', 'fp', 'fn')

    def __init__(self,
                 metrics: Union[str, Sequence[str]] = INSTANCE_METRIC_NAMES,
                 match_iou: float = 0.5,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None,
                 output_file: Optional[str] = None) -> None:
        super().__init__(
            metrics=metrics,
            collect_device=collect_device,
            prefix=prefix,
            output_file=output_file)
        if not 0.0 <= match_iou <= 1.0:
            raise ValueError(f'InstanceMetric: match_iou must be in [0, 1],'
                             f' got {match_iou}')
        self.match_iou = match_iou

    def score_image(self, data_sample: Any) -> Dict[str, float]:
        """Instance scores of one data sample.

        Raises:
            KeyError: If the sample lacks ``pred_instance_map`` or
                ``gt_instance_map``.
        """
        maps = {}
        for key in ('pred_instance_map', 'gt_instance_map'):
            maps[key] = get_map(data_sample, key)
            if maps[key] is None:
                raise KeyError(f'InstanceMetric needs {key!r} in every data'
                               f' sample; got keys {_keys(data_sample)}')
        return instance_metrics(
            maps['gt_instance_map'],
            maps['pred_instance_map'],
            match_iou=self.match_iou)


def _keys(sample: Any) -> list:
    """Field names of a data sample (dict or data element)."""
    if isinstance(sample, dict):
        return sorted(sample)
    return sorted(getattr(sample, 'keys', lambda: [])())
