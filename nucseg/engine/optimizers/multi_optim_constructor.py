"""One optimizer wrapper per sub-module: GANs, discriminators, S/D/R models.

Models whose parts are updated by different optimizers in an order the
model decides (CycleGAN's generators and discriminators, a segmenter with
an output-space discriminator and a reconstructor...) get an
:class:`mmengine.optim.OptimWrapperDict` built by
:class:`MultiOptimWrapperConstructor` and drive it from their own
``train_step`` (see :class:`nucseg.models.base_models.MultiOptimModel`).

Config (every key but ``constructor`` names one optimizer wrapper)::

    optim_wrapper = dict(
        constructor='MultiOptimWrapperConstructor',
        generators=dict(
            type='OptimWrapper',                  # or 'AmpOptimWrapper'
            optimizer=dict(type='Adam', lr=1e-4, betas=(0.5, 0.999))),
        discriminators=dict(
            optimizer=dict(type='Adam', lr=1e-4, betas=(0.5, 0.999)),
            paramwise_cfg=dict(norm_decay_mult=0.)),
        # one optimizer over two sub-modules, with a per-module lr:
        segmenter=dict(
            modules=['segmenter', 'reconstructor'],
            optimizer=dict(type='Adam', lr=1e-4),
            paramwise_cfg=dict(custom_keys={'reconstructor': dict(
                lr_mult=10.)})))
    param_scheduler = dict(                       # keyed the same way
        generators=[dict(type='LinearLR', ...)],
        discriminators=[dict(type='LinearLR', ...)])

Parameter names seen by ``paramwise_cfg`` are relative to the sub-module
when the wrapper has one module and prefixed with the module name when it
has several.
"""
import logging
import re
from typing import Dict, List, Optional

import torch.nn as nn
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapperDict

from nucseg.registry import OPTIM_WRAPPER_CONSTRUCTORS

__all__ = ['MultiOptimWrapperConstructor']

_MODULE_NAME = re.compile(r'[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*')


def _unwrap(module: nn.Module) -> nn.Module:
    """The module inside (possibly nested) DDP-style wrappers."""
    while is_model_wrapper(module) or isinstance(
            module, nn.parallel.DistributedDataParallel):
        module = module.module
    return module


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class MultiOptimWrapperConstructor:
    """Build an :class:`OptimWrapperDict` with one wrapper per key.

    Each key of ``optim_wrapper_cfg`` is the name of an optimizer wrapper
    and, unless the entry lists ``modules``, of the sub-module (attribute
    path, e.g. ``'generators'`` or ``'heads.disc'``) whose parameters it
    updates. Every entry is a normal single-optimizer wrapper config
    (``type``, ``optimizer``, ``clip_grad``, ``accumulative_counts``,
    ``paramwise_cfg``, and an optional per-key ``constructor``), so AMP is
    switched on per key with ``type='AmpOptimWrapper'`` (``tools/train.py
    --amp`` does that for every key).

    The constructor checks that every named sub-module exists, that no
    parameter is given to two optimizers, and logs trainable parameters
    that no optimizer updates.

    Args:
        optim_wrapper_cfg (dict): ``{name: wrapper config}``.
        paramwise_cfg (dict, optional): Must be None: give
            ``paramwise_cfg`` inside each key.

    Raises:
        TypeError: ``optim_wrapper_cfg`` or one of its entries is not a
            dict.
        ValueError: An entry has no ``optimizer``, a top-level
            ``paramwise_cfg`` is given, or a module name is malformed.
    """

    def __init__(self,
                 optim_wrapper_cfg: dict,
                 paramwise_cfg: Optional[dict] = None) -> None:
        if not isinstance(optim_wrapper_cfg, dict):
            raise TypeError('optim_wrapper must be a dict of optimizer '
                            f'wrapper configs, got {type(optim_wrapper_cfg)}')
        if paramwise_cfg is not None:
            raise ValueError(
                'MultiOptimWrapperConstructor: give paramwise_cfg inside '
                'each optimizer key of optim_wrapper, not at its top level')
        if not optim_wrapper_cfg:
            raise ValueError('optim_wrapper names no optimizer')
        self.modules: Dict[str, List[str]] = {}
        self.constructors: Dict[str, object] = {}
        for key, cfg in optim_wrapper_cfg.items():
            if not isinstance(cfg, dict):
                raise TypeError(
                    f'optim_wrapper.{key} must be a dict (an optimizer '
                    f'wrapper config), got {type(cfg).__name__}: {cfg!r}')
            cfg = dict(cfg)
            if 'optimizer' not in cfg:
                raise ValueError(f'optim_wrapper.{key} has no `optimizer`')
            modules = cfg.pop('modules', key)
            modules = [modules] if isinstance(modules, str) else list(modules)
            if not modules:
                raise ValueError(f'optim_wrapper.{key}.modules is empty')
            for name in modules:
                if not isinstance(name, str) or not _MODULE_NAME.fullmatch(
                        name):
                    raise ValueError(
                        f'optim_wrapper.{key}.modules: {name!r} is not a '
                        'sub-module name (attribute path)')
            self.modules[key] = modules
            constructor = cfg.pop('constructor',
                                  'DefaultOptimWrapperConstructor')
            sub_paramwise = cfg.pop('paramwise_cfg', None)
            if constructor == 'DefaultOptimWrapperConstructor':
                self.constructors[key] = DefaultOptimWrapperConstructor(
                    cfg, sub_paramwise)
            else:
                self.constructors[key] = OPTIM_WRAPPER_CONSTRUCTORS.build(
                    dict(
                        type=constructor,
                        optim_wrapper_cfg=cfg,
                        paramwise_cfg=sub_paramwise))

    @staticmethod
    def _submodule(model: nn.Module, key: str, name: str) -> nn.Module:
        module = model
        for part in name.split('.'):
            module = _unwrap(module)
            children = dict(module.named_children())
            if part not in children:
                raise KeyError(
                    f'optim_wrapper.{key}: {type(_unwrap(model)).__name__} '
                    f'has no sub-module {name!r}; its sub-modules are '
                    f'{sorted(dict(_unwrap(model).named_children()))}')
            module = children[part]
        return _unwrap(module)

    def _target(self, model: nn.Module, key: str) -> nn.Module:
        names = self.modules[key]
        if len(names) == 1:
            return self._submodule(model, key, names[0])
        # A container keyed by the module names gives paramwise_cfg names
        # such as ``reconstructor.conv.weight``.
        return nn.ModuleDict({
            name.replace('.', '_'): self._submodule(model, key, name)
            for name in names
        })

    def __call__(self, model: nn.Module) -> OptimWrapperDict:
        """Build the wrappers for ``model`` (possibly DDP-wrapped).

        Returns:
            OptimWrapperDict: One wrapper per configured key.

        Raises:
            KeyError: A configured sub-module does not exist.
            ValueError: A parameter would be updated by two optimizers.
        """
        model = _unwrap(model)
        wrappers = {}
        owner: Dict[int, str] = {}
        names = {id(p): n for n, p in model.named_parameters()}
        for key, constructor in self.constructors.items():
            wrapper = constructor(self._target(model, key))
            for group in wrapper.optimizer.param_groups:
                for p in group['params']:
                    if id(p) in owner and owner[id(p)] != key:
                        raise ValueError(
                            f'parameter {names.get(id(p), "?")} is given to '
                            f'two optimizers: {owner[id(p)]!r} and {key!r}; '
                            'each parameter must belong to one wrapper')
                    owner[id(p)] = key
            wrappers[key] = wrapper
            print_log(
                f'optimizer {key!r}: modules {self.modules[key]}, '
                f'{sum(len(g["params"]) for g in wrapper.param_groups)} '
                'parameter tensors', logger='current')
        orphans = [
            n for n, p in model.named_parameters()
            if p.requires_grad and id(p) not in owner
        ]
        if orphans:
            print_log(
                f'{len(orphans)} trainable parameter tensors are updated by '
                f'no optimizer: {", ".join(orphans[:8])}' +
                (' ...' if len(orphans) > 8 else ''),
                logger='current', level=logging.WARNING)
        return OptimWrapperDict(**wrappers)
