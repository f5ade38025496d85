"""mmengine metrics registered in ``nucseg.registry.METRICS``."""
from .instance_metric import InstanceMetric
from .per_image_metric import PerImageMetric
from .semantic_metric import SemanticMetric

__all__ = ['PerImageMetric', 'InstanceMetric', 'SemanticMetric']
