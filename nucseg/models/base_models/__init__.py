from .multi_optim_model import MultiOptimModel

__all__ = ['MultiOptimModel']
