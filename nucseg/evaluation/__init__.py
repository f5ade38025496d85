"""Evaluation: numpy metric functions and registered mmengine metrics.

``nucseg.evaluation.functional`` needs only numpy / scipy. The mmengine
metrics need the OpenMMLab stack; without it this package still imports
(so the functional API stays usable) and accessing a metric class raises
an ImportError naming the missing package.
"""
from .functional import *  # noqa: F401,F403
from .functional import __all__ as _functional_all

_METRIC_CLASSES = ('PerImageMetric', 'InstanceMetric', 'SemanticMetric')
_STACK = ('torch', 'mmengine', 'mmcv', 'mmseg', 'mmdet')

try:
    from .metrics import *  # noqa: F401,F403
except ModuleNotFoundError as exc:  # pragma: no cover - env dependent
    if (exc.name or '').split('.')[0] not in _STACK:
        raise
    _missing = exc

    def __getattr__(name: str):
        if name in _METRIC_CLASSES:
            raise ImportError(f'nucseg.evaluation.{name} needs the '
                              f'OpenMMLab stack: {_missing}') from _missing
        raise AttributeError(
            f"module 'nucseg.evaluation' has no attribute {name!r}")


__all__ = list(_functional_all) + list(_METRIC_CLASSES)
