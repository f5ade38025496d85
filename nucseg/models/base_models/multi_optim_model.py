"""Base class of models updated by several optimizers in their own order."""
import contextlib
from typing import (Callable, Dict, Iterator, Mapping, Optional, Sequence,
                    Tuple, Union)

import torch
from mmengine.logging import MessageHub
from mmengine.model import BaseModel, is_model_wrapper
from mmengine.optim import OptimWrapperDict
from torch import Tensor, nn

__all__ = ['MultiOptimModel']

LossFn = Callable[[], Dict[str, Tensor]]


class MultiOptimModel(BaseModel):
    """A model whose parts are stepped by separate optimizers.

    GANs (CycleGAN), output-space adversarial segmenters and
    segmenter/discriminator/reconstructor (S/D/R) models update different
    sub-modules with different optimizers, in an order (and at a rate)
    that the method prescribes. A subclass

    * builds each part as a first-level sub-module named like its
      optimizer in the config's ``optim_wrapper`` (built by
      :class:`~nucseg.engine.optimizers.MultiOptimWrapperConstructor`) and
      lists those names in :attr:`optim_keys`;
    * implements ``train_step(data, optim_wrapper)`` with the update order:
      call ``data = self.data_preprocessor(data, True)`` first, then one
      :meth:`update` per optimizer step, skipping steps with
      :meth:`should_step`, and return the log variables;
    * implements ``forward(inputs, data_samples, mode)`` for ``'tensor'``
      and ``'predict'`` (``'loss'`` is not used: losses live in
      ``train_step``).

    Distributed training must use
    ``model_wrapper_cfg=dict(type='MMSeparateDistributedDataParallel')``:
    it wraps every first-level sub-module in its own DDP and calls this
    model's ``train_step``. Rules under that wrapper:

    * call a part through its attribute (``self.generators(x)``, the DDP
      wrapper) in the step that updates it, once per backward;
    * inside another part's step use :meth:`frozen`, which turns off the
      part's ``requires_grad`` and returns the bare module (no DDP
      bookkeeping for a module that gets no gradient);
    * compute outputs of a part that will not be stepped in this iteration
      under ``torch.no_grad()``.

    Args:
        data_preprocessor (dict | nn.Module, optional): Data preprocessor.
        step_intervals (dict[str, int], optional): Step optimizer ``key``
            every ``n`` iterations (default 1 for every key).
        step_begins (dict[str, int], optional): First iteration at which
            ``key`` is stepped (default 0).
        init_cfg (dict, optional): mmengine initialisation config.

    Raises:
        ValueError: A schedule names an unknown optimizer or is not a
            positive (interval) / non-negative (begin) integer.
    """

    #: Names of the optimizer wrappers (and sub-modules) ``train_step``
    #: uses; subclasses set it.
    optim_keys: Tuple[str, ...] = ()

    def __init__(self,
                 data_preprocessor: Optional[Union[dict, nn.Module]] = None,
                 step_intervals: Optional[Mapping[str, int]] = None,
                 step_begins: Optional[Mapping[str, int]] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.step_intervals = self._schedule(step_intervals,
                                             'step_intervals', 1)
        self.step_begins = self._schedule(step_begins, 'step_begins', 0)

    def _schedule(self, values: Optional[Mapping[str, int]], name: str,
                  minimum: int) -> Dict[str, int]:
        values = dict(values or {})
        for key, value in values.items():
            if self.optim_keys and key not in self.optim_keys:
                raise ValueError(
                    f'{type(self).__name__}.{name}: unknown optimizer '
                    f'{key!r}; expected one of {list(self.optim_keys)}')
            if isinstance(value, bool) or not isinstance(
                    value, int) or value < minimum:
                raise ValueError(
                    f'{type(self).__name__}.{name}[{key!r}] must be an '
                    f'integer >= {minimum}, got {value!r}')
        return values

    # ------------------------------------------------------------------
    # helpers for train_step
    # ------------------------------------------------------------------
    def check_optim_wrapper(self, optim_wrapper: OptimWrapperDict) -> None:
        """Raise a clear error unless every :attr:`optim_keys` is present.

        Raises:
            TypeError: ``optim_wrapper`` is a single wrapper (the config's
                ``optim_wrapper`` lacks
                ``constructor='MultiOptimWrapperConstructor'``).
            KeyError: A needed optimizer is missing.
        """
        if not isinstance(optim_wrapper, OptimWrapperDict):
            raise TypeError(
                f'{type(self).__name__}.train_step needs an OptimWrapperDict '
                f'with keys {list(self.optim_keys)}; set optim_wrapper='
                "dict(constructor='MultiOptimWrapperConstructor', "
                + ', '.join(f'{k}=dict(optimizer=...)'
                            for k in self.optim_keys) +
                f') (got {type(optim_wrapper).__name__})')
        missing = [k for k in self.optim_keys if k not in optim_wrapper]
        if missing:
            raise KeyError(
                f'{type(self).__name__}: optim_wrapper has no optimizer '
                f'{missing}; it has {list(optim_wrapper.keys())}')

    @staticmethod
    def current_iter() -> int:
        """0-based index of the running training iteration."""
        return int(MessageHub.get_current_instance().get_info('iter', 0))

    def should_step(self, key: str, cur_iter: Optional[int] = None) -> bool:
        """Whether optimizer ``key`` steps in iteration ``cur_iter``.

        True when ``cur_iter >= step_begins[key]`` and
        ``(cur_iter + 1) % step_intervals[key] == 0``.
        """
        it = self.current_iter() if cur_iter is None else int(cur_iter)
        interval = self.step_intervals.get(key, 1)
        return it >= self.step_begins.get(key, 0) and (it + 1) % interval == 0

    def unwrapped(self, name: str) -> nn.Module:
        """Sub-module ``name`` without its DDP wrapper (if any)."""
        module = getattr(self, name)
        while is_model_wrapper(module) or isinstance(
                module, nn.parallel.DistributedDataParallel):
            module = module.module
        return module

    @contextlib.contextmanager
    def frozen(self, *names: str) -> Iterator[Union[nn.Module, Tuple]]:
        """Switch off ``requires_grad`` of sub-modules for a block.

        Gradients still flow *through* the frozen modules to their inputs
        (e.g. from a frozen discriminator into the generator's output);
        the previous flags are restored on exit, also after an error.

        Args:
            *names (str): Sub-module names.

        Yields:
            nn.Module | tuple[nn.Module]: The bare (unwrapped) module(s),
            to be called inside the block.
        """
        modules = [self.unwrapped(n) for n in names]
        saved = [(p, p.requires_grad) for m in modules
                 for p in m.parameters()]
        for p, _ in saved:
            p.requires_grad_(False)
        try:
            yield modules[0] if len(modules) == 1 else tuple(modules)
        finally:
            for p, flag in saved:
                p.requires_grad_(flag)

    def update(self,
               optim_wrapper: OptimWrapperDict,
               key: str,
               loss_fn: LossFn,
               modules: Optional[Sequence[str]] = None) -> Dict[str, Tensor]:
        """One step of optimizer ``key``: losses, backward, step, zero_grad.

        ``loss_fn`` runs inside the wrapper's ``optim_context`` (autocast
        for ``AmpOptimWrapper``, ``no_sync`` while accumulating gradients),
        then :meth:`parse_losses` sums every ``loss*`` entry and the
        wrapper's ``update_params`` applies it.

        Args:
            optim_wrapper (OptimWrapperDict): All wrappers.
            key (str): Wrapper to step.
            loss_fn (callable): ``() -> dict[str, Tensor]`` of losses.
            modules (Sequence[str], optional): Sub-modules the wrapper
                updates (for ``no_sync``); defaults to ``(key,)``.

        Returns:
            dict[str, Tensor]: Log variables; the total is logged as
            ``loss_<key>``.
        """
        wrapper = optim_wrapper[key]
        with contextlib.ExitStack() as stack:
            for name in (modules or (key, )):
                stack.enter_context(
                    wrapper.optim_context(getattr(self, name)))
            losses = loss_fn()
        total, log_vars = self.parse_losses(losses)
        wrapper.update_params(total)
        log_vars = {
            k: v.detach() if isinstance(v, Tensor) else v
            for k, v in log_vars.items()
        }
        log_vars[f'loss_{key}'] = log_vars.pop('loss')
        return log_vars

    def merge_log_vars(self,
                       *log_vars: Dict[str, Tensor]) -> Dict[str, Tensor]:
        """Merge the log variables of the steps of one iteration.

        Adds ``loss``, the sum of the ``loss_<key>`` totals of the steps
        taken, so hooks and loggers that watch ``outputs['loss']`` (e.g.
        for NaN) see every optimizer's loss.
        """
        merged: Dict[str, Tensor] = {}
        for item in log_vars:
            merged.update(item)
        totals = [
            torch.as_tensor(merged[f'loss_{k}'], dtype=torch.float32)
            for k in self.optim_keys if f'loss_{k}' in merged
        ]
        merged['loss'] = torch.stack(totals).sum() if totals else \
            torch.zeros(())
        return merged

    def train_step(self, data: Union[dict, tuple, list],
                   optim_wrapper: OptimWrapperDict) -> Dict[str, Tensor]:
        """Subclasses implement the update order (see the class doc)."""
        raise NotImplementedError(
            f'{type(self).__name__} must implement train_step(data, '
            'optim_wrapper)')

    def _loss_mode_error(self) -> RuntimeError:
        return RuntimeError(
            f"{type(self).__name__}.forward(mode='loss') is not used: the "
            'model updates its optimizers in train_step. Under distributed '
            "training set model_wrapper_cfg=dict(type='MMSeparate"
            "DistributedDataParallel') so that train_step is called.")
