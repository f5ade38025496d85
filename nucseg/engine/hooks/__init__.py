from .discriminator_accuracy_hook import DiscriminatorAccuracyHook
from .domain_sizes_hook import DomainSizesHook
from .grl_lambda_hook import GRLLambdaHook
from .instance_overlay_hook import InstanceOverlayHook
from .save_instance_maps_hook import SaveInstanceMapsHook

__all__ = [
    'InstanceOverlayHook', 'SaveInstanceMapsHook', 'GRLLambdaHook',
    'DiscriminatorAccuracyHook', 'DomainSizesHook'
]
