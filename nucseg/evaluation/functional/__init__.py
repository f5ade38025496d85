"""Numpy-only metric functions (no torch / OpenMMLab needed)."""
from .instance_metrics import (INSTANCE_METRIC_NAMES, check_label_map,
                               instance_metrics, remap_label)
from .semantic_metrics import (SEMANTIC_METRIC_NAMES, boundary_mask,
                               foreground_mask, hausdorff_distance,
                               semantic_metrics)

__all__ = [
    'INSTANCE_METRIC_NAMES', 'SEMANTIC_METRIC_NAMES', 'check_label_map',
    'remap_label', 'instance_metrics', 'foreground_mask', 'boundary_mask',
    'hausdorff_distance', 'semantic_metrics'
]
