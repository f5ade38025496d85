from .multi_optim_constructor import MultiOptimWrapperConstructor
from .trainable_constructor import TrainableParamsOptimWrapperConstructor

__all__ = [
    'MultiOptimWrapperConstructor', 'TrainableParamsOptimWrapperConstructor'
]
