from .watershed import (ContourWatershed, DistanceWatershed,
                        add_instance_predictions)

__all__ = ['ContourWatershed', 'DistanceWatershed', 'add_instance_predictions']
