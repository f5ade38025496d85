"""mmengine metric: pixel-level foreground metrics averaged over images."""
import logging
import math
from typing import Any, Dict, Optional, Sequence, Union

import numpy as np
from mmengine.logging import MMLogger, print_log

from nucseg.registry import METRICS
from ..functional import SEMANTIC_METRIC_NAMES, semantic_metrics
from .per_image_metric import PerImageMetric, get_map

__all__ = ['SemanticMetric']

_DISTANCES = ('hausdorff', 'hd95')


@METRICS.register_module()
class SemanticMetric(PerImageMetric):
    """Foreground Dice, IoU, mIoU, F1 and Hausdorff, per image then averaged.

    Each image is scored with
    :func:`nucseg.evaluation.functional.semantic_metrics` on the binary
    nucleus foreground and the reported value is the mean over images.

    Foreground of the prediction (``pred_source``): ``'sem_seg'``
    (default) scores the model's raw pixel prediction ``pred_sem_seg``, as
    semantic-segmentation papers do (AMA-SAM Sec. 3.6: DSC, mIoU, F1, HD),
    and not the instance post-processor's output (holes filled, small
    objects removed); ``'instance'`` scores ``pred_instance_map > 0``.
    Either falls back to the other field when a sample lacks it. The
    ground truth is ``gt_instance_map > 0`` (``gt_sem_seg`` without
    one). A class map counts *every non-zero class* as foreground (so a
    3-class inside / boundary map counts its boundary class as nucleus
    too).

    Hausdorff distances (pixels) are infinite on an image where exactly one
    of gt and prediction is empty; their mean is taken over the images
    with a finite distance, and a warning reports how many were left out
    (``inf`` when none is finite). The CSV keeps every per-image value.

    Args:
        metrics (str | Sequence[str]): Scores to report, any of ``'dice'``,
            ``'iou'``, ``'miou'``, ``'precision'``, ``'recall'``, ``'f1'``,
            ``'hausdorff'``, ``'hd95'``. Defaults to
            ``('dice', 'miou', 'f1', 'hausdorff')``.
        collect_device (str): Device to collect results across ranks.
            Defaults to ``'cpu'``.
        prefix (str, optional): Prefix of the metric names. Defaults to
            None.
        output_file (str, optional): CSV path for per-image scores.
            Defaults to None.
        pred_source (str): ``'sem_seg'`` or ``'instance'`` (see above).
    """

    PRED_SOURCES = ('sem_seg', 'instance')

    METRIC_NAMES = SEMANTIC_METRIC_NAMES

    def __init__(self,
                 metrics: Union[str, Sequence[str]] = ('dice', 'miou', 'f1',
                                                       'hausdorff'),
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None,
                 output_file: Optional[str] = None,
                 pred_source: str = 'sem_seg') -> None:
        super().__init__(
            metrics=metrics,
            collect_device=collect_device,
            prefix=prefix,
            output_file=output_file)
        if pred_source not in self.PRED_SOURCES:
            raise ValueError(f'pred_source must be one of '
                             f'{self.PRED_SOURCES}, got {pred_source!r}')
        self.pred_source = pred_source
        self.with_hausdorff = any(m in _DISTANCES for m in self.metrics)

    def _foreground(self, data_sample: Any, kind: str) -> np.ndarray:
        """Foreground (H, W) bool of ``'pred'`` or ``'gt'``."""
        order = ('instance_map', 'sem_seg')
        if kind == 'pred' and self.pred_source == 'sem_seg':
            order = order[::-1]
        for key in (f'{kind}_{field}' for field in order):
            data = get_map(data_sample, key)
            if data is not None:
                return data != 0
        raise KeyError(f'SemanticMetric needs {kind}_instance_map or '
                       f'{kind}_sem_seg in every data sample')

    def score_image(self, data_sample: Any) -> Dict[str, float]:
        """Semantic scores of one data sample."""
        return semantic_metrics(
            self._foreground(data_sample, 'gt'),
            self._foreground(data_sample, 'pred'),
            with_hausdorff=self.with_hausdorff)

    def average(self, name: str, values: np.ndarray) -> float:
        """Mean over images; distances skip non-finite values."""
        if name not in _DISTANCES:
            return float(values.mean())
        finite = values[np.isfinite(values)]
        skipped = values.size - finite.size
        if skipped:
            print_log(
                f'SemanticMetric: {name} is infinite on {skipped} of '
                f'{values.size} images (one of gt / prediction empty); '
                f'they are left out of the mean',
                logger=MMLogger.get_current_instance(),
                level=logging.WARNING)
        return float(finite.mean()) if finite.size else math.inf
