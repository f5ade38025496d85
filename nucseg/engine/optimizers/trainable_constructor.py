"""An optimizer over the trainable parameters only (frozen parts excluded).

mmengine 0.10.7's ``DefaultOptimWrapperConstructor`` hands
``model.parameters()`` -- frozen ones included -- to the optimizer when no
``paramwise_cfg`` is given; with one it skips frozen parameters but
(unless ``bypass_duplicate``) adds a parameter reachable through two
module paths twice, which torch rejects. nnU-Net's networks reach their
parameters through several paths (``decoder.encoder``, a conv both as
``.conv`` and inside ``.all_modules``).

:class:`TrainableParamsOptimWrapperConstructor` gives the optimizer every
parameter with ``requires_grad=True`` exactly once and nothing else, so a
frozen part never gets optimizer state (momentum, Adam moments) nor weight
decay, and logs how many parameters are trained and frozen.
"""
import logging
from typing import List

import torch.nn as nn
from mmengine.logging import print_log
from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS, OPTIMIZERS

from nucseg.registry import OPTIM_WRAPPER_CONSTRUCTORS

__all__ = ['TrainableParamsOptimWrapperConstructor']


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class TrainableParamsOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """Optimizer over the model's trainable parameters, each once.

    Config::

        optim_wrapper = dict(
            type='OptimWrapper',
            constructor='TrainableParamsOptimWrapperConstructor',
            optimizer=dict(type='SGD', lr=1e-2, momentum=0.99,
                           nesterov=True, weight_decay=3e-5),
            paramwise_cfg=dict(...))   # optional, as mmengine's

    With ``paramwise_cfg`` the per-parameter rules of
    ``DefaultOptimWrapperConstructor`` apply (:meth:`paramwise_groups`;
    mmengine logs a warning per frozen parameter); frozen parameters are
    left out and duplicates removed in both cases.

    Raises:
        ValueError: The model has no trainable parameter.
    """

    @staticmethod
    def trainable_parameters(model: nn.Module) -> List[nn.Parameter]:
        """``requires_grad`` parameters of ``model``, each once."""
        return [p for p in model.parameters() if p.requires_grad]

    def paramwise_groups(self, model: nn.Module) -> List[dict]:
        """mmengine's ``paramwise_cfg`` groups, trainable and unique.

        A parameter reachable through two module paths keeps the group of
        its first path (mmengine's own ``bypass_duplicate`` misses some
        duplicates).
        """
        params: List[dict] = []
        self.add_params(params, model)
        seen, groups = set(), []
        for group in params:
            kept = [p for p in group['params']
                    if p.requires_grad and id(p) not in seen]
            seen.update(id(p) for p in kept)
            if kept:
                groups.append(dict(group, params=kept))
        return groups

    def __call__(self, model: nn.Module) -> OptimWrapper:
        if hasattr(model, 'module'):
            model = model.module
        trainable = self.trainable_parameters(model)
        if not trainable:
            raise ValueError(
                f'{type(model).__name__} has no trainable parameter; '
                'nothing to optimise (check the freezing settings)')
        n_frozen = sum(
            p.numel() for p in model.parameters() if not p.requires_grad)
        print_log(
            f'optimizer over {sum(p.numel() for p in trainable)} trainable '
            f'parameters ({len(trainable)} tensors); {n_frozen} frozen '
            'parameters are not given to it', logger='current',
            level=logging.INFO)
        if self.paramwise_cfg:
            groups = self.paramwise_groups(model)
        else:
            groups = trainable
        optim_wrapper_cfg = self.optim_wrapper_cfg.copy()
        optim_wrapper_cfg.setdefault('type', 'OptimWrapper')
        optimizer_cfg = dict(self.optimizer_cfg, params=groups)
        optimizer = OPTIMIZERS.build(optimizer_cfg)
        return OPTIM_WRAPPERS.build(
            optim_wrapper_cfg, default_args=dict(optimizer=optimizer))
