"""Shared machinery of metrics computed per image and averaged.

HoVer-Net's ``compute_stats`` scores every image on its own and reports the
mean over images; :class:`PerImageMetric` does the same inside mmengine's
evaluator: ``process`` scores each data sample and stores one row per
image (with its name), ``compute_metrics`` averages the rows, logs a table
and can write the rows to a CSV file.
"""
import csv
import os
import os.path as osp
from abc import abstractmethod
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger, print_log

__all__ = ['PerImageMetric', 'get_map']


def get_map(sample: Any, key: str) -> Optional[np.ndarray]:
    """Read a (1, H, W) or (H, W) map from a data sample as (H, W) numpy.

    Args:
        sample (dict | BaseDataElement): One data sample; mmengine's
            evaluator passes ``SegDataSample.to_dict()``, where a
            ``PixelData`` field is a dict with key ``'data'``.
        key (str): Field name, e.g. ``'pred_instance_map'``.

    Returns:
        np.ndarray | None: The map of shape (H, W), or None when the
        sample has no such field.

    Raises:
        ValueError: If the field is not of shape (H, W) or (1, H, W).
    """
    if isinstance(sample, dict):
        field = sample.get(key)
    else:
        field = getattr(sample, key, None)
    if field is None:
        return None
    if isinstance(field, dict):
        data = field.get('data')
    else:
        data = getattr(field, 'data', field)
    if hasattr(data, 'detach'):
        data = data.detach().cpu().numpy()
    data = np.asarray(data)
    if data.ndim == 3 and data.shape[0] == 1:
        data = data[0]
    if data.ndim != 2:
        raise ValueError(f'data sample field {key!r} must have shape '
                         f'(1, H, W) or (H, W), got {data.shape}')
    return data


def _image_name(sample: Any, fallback: str) -> str:
    """Base name of the sample's ``img_path`` (or ``fallback``)."""
    if isinstance(sample, dict):
        path = sample.get('img_path')
    else:
        path = getattr(sample, 'img_path', None)
    return osp.basename(str(path)) if path else fallback


class PerImageMetric(BaseMetric):
    """Base class: score every image, average the scores over images.

    Subclasses set :attr:`METRIC_NAMES` (selectable scores),
    :attr:`EXTRA_COLUMNS` (always-stored per-image values such as counts)
    and implement :meth:`score_image`.

    Args:
        metrics (str | Sequence[str]): Scores to report, a subset of
            :attr:`METRIC_NAMES`.
        collect_device (str): Device used to collect results across ranks,
            ``'cpu'`` or ``'gpu'``. Defaults to ``'cpu'``.
        prefix (str, optional): Prefix of the metric names in the returned
            dict (``'<prefix>/<name>'``). Defaults to None.
        output_file (str, optional): If set, ``compute_metrics`` writes a
            CSV with one row per image (``img_name``, the selected scores,
            the extra columns) to this path. Defaults to None.
    """

    METRIC_NAMES: Tuple[str, ...] = ()
    EXTRA_COLUMNS: Tuple[str, ...] = ()

    def __init__(self,
                 metrics: Union[str, Sequence[str]],
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None,
                 output_file: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if isinstance(metrics, str):
            metrics = (metrics, )
        metrics = tuple(metrics)
        if not metrics:
            raise ValueError(f'{type(self).__name__}: metrics is empty; '
                             f'choose from {self.METRIC_NAMES}')
        unknown = [m for m in metrics if m not in self.METRIC_NAMES]
        if unknown:
            raise ValueError(f'{type(self).__name__}: unknown metrics '
                             f'{unknown}; choose from {self.METRIC_NAMES}')
        if len(set(metrics)) != len(metrics):
            raise ValueError(f'{type(self).__name__}: duplicate metrics in '
                             f'{metrics}')
        self.metrics = metrics
        self.output_file = output_file

    @abstractmethod
    def score_image(self, data_sample: Any) -> Dict[str, float]:
        """Scores of one data sample (keys: metrics and extra columns)."""

    def process(self, data_batch: Any, data_samples: Sequence[Any]) -> None:
        """Score every data sample of a batch and store one row each.

        Args:
            data_batch (Any): The batch from the data loader (unused).
            data_samples (Sequence[dict]): Model outputs with ground truth,
                as dicts (``SegDataSample.to_dict()``).
        """
        for data_sample in data_samples:
            scores = self.score_image(data_sample)
            row: Dict[str, Any] = dict(img_name=_image_name(
                data_sample, f'image_{len(self.results)}'))
            for key in self.metrics + self.EXTRA_COLUMNS:
                row[key] = scores[key]
            self.results.append(row)

    def average(self, name: str, values: np.ndarray) -> float:
        """Mean of one score over images (subclasses may skip values)."""
        return float(values.mean())

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """Average the per-image scores, log a table, maybe write a CSV.

        Args:
            results (list[dict]): Rows stored by :meth:`process`, from all
                ranks.

        Returns:
            dict[str, float]: Mean of each selected score over images.
        """
        logger: MMLogger = MMLogger.get_current_instance()
        if not results:
            return {name: float('nan') for name in self.metrics}
        summary = {}
        stats = []
        for name in self.metrics:
            values = np.array([row[name] for row in results], np.float64)
            summary[name] = self.average(name, values)
            finite = values[np.isfinite(values)]
            stats.append((name, summary[name],
                          float(finite.std()) if finite.size else np.nan,
                          float(values.min()), float(values.max())))
        print_log(
            f'{type(self).__name__} over {len(results)} images:\n' +
            _format_table(stats),
            logger=logger)
        if self.output_file:
            self._write_csv(results)
            print_log(
                f'per-image metrics written to {self.output_file}',
                logger=logger)
        return summary

    def _write_csv(self, results: List[dict]) -> None:
        """Write one CSV row per image to :attr:`output_file`."""
        parent = osp.dirname(osp.abspath(self.output_file))
        os.makedirs(parent, exist_ok=True)
        columns = ('img_name', ) + self.metrics + self.EXTRA_COLUMNS
        with open(self.output_file, 'w', newline='') as f:
            writer = csv.DictWriter(f, fieldnames=columns)
            writer.writeheader()
            for row in results:
                writer.writerow({key: row[key] for key in columns})


def _format_table(stats: List[tuple]) -> str:
    """Text table of (name, mean, std, min, max) rows."""
    header = ('Metric', 'Mean', 'Std', 'Min', 'Max')
    rows = [(name, ) + tuple(f'{v:.4f}' for v in values)
            for name, *values in stats]
    try:
        from prettytable import PrettyTable
    except ImportError:
        widths = [
            max(len(str(r[i])) for r in [header] + rows)
            for i in range(len(header))
        ]
        lines = [
            '  '.join(str(c).rjust(w) for c, w in zip(r, widths))
            for r in [header] + rows
        ]
        return '\n'.join(lines)
    table = PrettyTable(field_names=header)
    for row in rows:
        table.add_row(row)
    return table.get_string()
