from .components import ConnectedComponents
from .soft_nms import (ContainmentAwareSoftNMS, combined_scores,
                       containment_aware_soft_nms, count_contained,
                       hematoxylin_map, normalize_h_map)
from .watershed import (ContourWatershed, DistanceWatershed,
                        add_instance_predictions)

__all__ = [
    'ContourWatershed', 'DistanceWatershed', 'add_instance_predictions',
    'ContainmentAwareSoftNMS', 'containment_aware_soft_nms',
    'combined_scores', 'count_contained', 'normalize_h_map',
    'hematoxylin_map', 'ConnectedComponents'
]
