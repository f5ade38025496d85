from .checkpoint_hook import CheckpointHook
from .consistency_ramp_hook import ConsistencyRampHook, gaussian_rampup
from .discriminator_accuracy_hook import DiscriminatorAccuracyHook
from .domain_sizes_hook import DomainSizesHook
from .grl_lambda_hook import GRLLambdaHook
from .instance_overlay_hook import InstanceOverlayHook
from .model_attribute_hook import ModelAttributeHook
from .non_finite_loss_hook import (NonFiniteLossError, NonFiniteLossHook,
                                   non_finite_losses)
from .save_instance_maps_hook import SaveInstanceMapsHook
from .translation_samples_hook import TranslationSamplesHook

__all__ = [
    'InstanceOverlayHook', 'SaveInstanceMapsHook', 'GRLLambdaHook',
    'DiscriminatorAccuracyHook', 'DomainSizesHook', 'CheckpointHook',
    'NonFiniteLossHook', 'NonFiniteLossError', 'non_finite_losses',
    'TranslationSamplesHook', 'ConsistencyRampHook', 'gaussian_rampup',
    'ModelAttributeHook'
]
