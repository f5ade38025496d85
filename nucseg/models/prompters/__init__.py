from .partial_ot import PartialOTInfo, partial_ot
from .point_prompts import (check_points, distance_maxima_points,
                            expanded_background, merge_points,
                            nearest_negatives, negative_points,
                            positive_points, watershed_centroids)
from .pot_scan import POTScan, POTScanResult, POTScanStep, activation_maps
from .prototypes import cosine_cost, kmeans_prototypes
from .spgen import SPGen

__all__ = [
    'SPGen', 'partial_ot', 'PartialOTInfo', 'kmeans_prototypes',
    'cosine_cost', 'POTScan', 'POTScanResult', 'POTScanStep',
    'activation_maps', 'positive_points', 'negative_points',
    'nearest_negatives', 'expanded_background', 'merge_points',
    'watershed_centroids', 'check_points', 'distance_maxima_points'
]
