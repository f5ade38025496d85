from .pdam import PDAM, paint_instance_map
from .task_reweight import source_probability, task_reweight

__all__ = ['PDAM', 'paint_instance_map', 'task_reweight',
           'source_probability']
