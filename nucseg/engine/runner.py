"""nucseg's runner: trusted strict loading, atomic saves, safe resume.

mmengine's :class:`~mmengine.runner.Runner` with three changes that keep
a run's files trustworthy when things go wrong:

* **Loading** (``load_from``, ``tools/test.py CHECKPOINT``, ``--resume``)
  goes through :func:`nucseg.utils.checkpoint.load_trusted` (nothing of
  the file is executed) and is strict: missing or unexpected keys and
  shape mismatches are errors unless the config sets
  ``strict_load = False`` (``--non-strict``). Testing a model that must be
  trained without a checkpoint is refused unless
  ``allow_random_weights = True`` (``--allow-random-weights``).
* **Saving** writes ``.<name>.tmp`` in the same folder, fsyncs it and
  renames it, so a killed run never leaves a truncated ``iter_N.pth``; a
  model state with NaN or inf weights is never saved.
* **NaN guard**: :class:`~nucseg.engine.hooks.NonFiniteLossHook` is added
  to ``custom_hooks`` when a config lacks it (configs that replace the
  default list), unless ``check_finite_loss = False``.
* **Auto-resume** (``--resume`` without a file) tries the checkpoint named
  by ``last_checkpoint`` and then every ``iter_N.pth`` / ``epoch_N.pth``
  from the newest down, logging each one it skips and why; it stops with an
  error if checkpoints exist but none loads, instead of silently starting
  again at iteration 0. Untrusted files are never skipped silently: they
  stop the run.

Configs select it with ``runner_type = 'NucsegRunner'`` (set in
``configs/_base_/default_runtime.py``; the tools use it by default).
"""
import glob
import os
import os.path as osp
import re
from typing import Callable, List, Optional, Union

from mmengine.dist import master_only
from mmengine.runner import Runner

from nucseg.registry import RUNNERS
from nucseg.utils.checkpoint import (CheckpointError, CorruptCheckpointError,
                                     NonFiniteStateError, atomic_replace,
                                     load_trusted, load_weights,
                                     non_finite_entries, require_checkpoint)
from .hooks.non_finite_loss_hook import NonFiniteLossHook

__all__ = ['NucsegRunner', 'resume_candidates']

_NUMBERED = re.compile(r'^(iter|epoch)_(\d+)\.pth$')


def resume_candidates(work_dir: str) -> List[str]:
    """Checkpoints to try for auto-resume, most recent first.

    The file named in ``<work_dir>/last_checkpoint`` (if it exists), then
    ``iter_N.pth`` and ``epoch_N.pth`` by decreasing ``N``.
    """
    found = []
    pointer = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(pointer):
        with open(pointer) as f:
            last = f.read().strip()
        if last and osp.isfile(last):
            found.append(osp.abspath(last))
    numbered = []
    for path in glob.glob(osp.join(work_dir, '*.pth')):
        match = _NUMBERED.match(osp.basename(path))
        if match:
            numbered.append((int(match.group(2)), osp.abspath(path)))
    for _, path in sorted(numbered, reverse=True):
        if path not in found:
            found.append(path)
    return found


@RUNNERS.register_module()
class NucsegRunner(Runner):
    """mmengine's Runner with strict trusted loading, atomic checkpoint
    writes and a resume that falls back to the newest loadable checkpoint.

    Config keys read (besides mmengine's): ``strict_load`` (bool, default
    True), ``allow_random_weights`` (bool, default False) and
    ``check_finite_loss`` (bool, default True).
    """

    def register_hooks(self, default_hooks=None, custom_hooks=None) -> None:
        """mmengine's, plus the NaN guard if the config lacks it."""
        custom_hooks = list(custom_hooks or [])

        def is_guard(hook) -> bool:
            if isinstance(hook, dict):
                kind = hook.get('type')
                return kind is NonFiniteLossHook or str(kind).split(
                    '.')[-1] == 'NonFiniteLossHook'
            return isinstance(hook, NonFiniteLossHook)

        if self.cfg.get('check_finite_loss', True) and not any(
                is_guard(h) for h in custom_hooks):
            custom_hooks.append(dict(type='NonFiniteLossHook'))
        super().register_hooks(default_hooks, custom_hooks)

    @property
    def strict_load(self) -> bool:
        """Whether checkpoint keys and shapes must match the model."""
        return bool(self.cfg.get('strict_load', True))

    def load_checkpoint(self,
                        filename: str,
                        map_location: Union[str, Callable] = 'cpu',
                        strict: Optional[bool] = None,
                        revise_keys: Optional[list] = None) -> dict:
        """Load the weights of ``filename`` into the model.

        Args:
            filename (str): Local checkpoint file.
            map_location (str | Callable): As for :func:`torch.load`.
            strict (bool, optional): Defaults to the config's
                ``strict_load`` (True).
            revise_keys (list, optional): Unused; the ``module.`` prefix of
                DDP checkpoints is always removed.

        Returns:
            dict: The loaded checkpoint.

        Raises:
            UntrustedCheckpointError, CorruptCheckpointError,
            CheckpointMismatchError: See :mod:`nucseg.utils.checkpoint`.
        """
        strict = self.strict_load if strict is None else strict
        checkpoint = load_trusted(filename, map_location)
        self.call_hook('after_load_checkpoint', checkpoint=checkpoint)
        load_weights(self.model, checkpoint, filename, strict=strict,
                     logger=self.logger)
        self._has_loaded = True
        self.logger.info(f'Load checkpoint from {filename}')
        return checkpoint

    def load_or_resume(self) -> None:
        """Load ``load_from``, resume a given file, or auto-resume."""
        if self._has_loaded:
            return None
        if not (self._resume and self._load_from is None):
            return super().load_or_resume()
        candidates = resume_candidates(self.work_dir)
        if not candidates:
            self.logger.warning(
                f'--resume: no checkpoint in {self.work_dir}; training '
                'starts at iteration 0')
            return None
        skipped = []
        for path in candidates:
            try:
                self.resume(path)
            except CorruptCheckpointError as err:
                skipped.append(f'{osp.basename(path)} ({err})')
                self.logger.warning(f'--resume: skipped {path}: {err}')
                continue
            self.logger.info(
                f'Auto resumed from {path}' +
                (f' (skipped {len(skipped)} newer unreadable checkpoint(s))'
                 if skipped else ''))
            self._has_loaded = True
            return None
        raise CheckpointError(
            f'--resume: none of the {len(candidates)} checkpoints in '
            f'{self.work_dir} can be loaded: ' + '; '.join(skipped) +
            '. Remove them (or the work dir) to start again.')

    @master_only
    def save_checkpoint(self,
                        out_dir: str,
                        filename: str,
                        file_client_args: Optional[dict] = None,
                        save_optimizer: bool = True,
                        save_param_scheduler: bool = True,
                        meta: Optional[dict] = None,
                        by_epoch: bool = True,
                        backend_args: Optional[dict] = None) -> None:
        """Save a checkpoint atomically; refuse a non-finite model state.

        Arguments as for :meth:`mmengine.runner.Runner.save_checkpoint`.
        In a local folder ``.<filename>.tmp`` is written, fsynced and
        renamed to ``filename``; other back ends are written as mmengine
        does.

        Raises:
            NonFiniteStateError: If a weight or buffer is NaN or inf.
        """
        model = getattr(self.model, 'module', self.model)
        bad = non_finite_entries(model.state_dict())
        if bad:
            raise NonFiniteStateError(
                f'not saving {filename}: the model state holds NaN or inf '
                f'values ({", ".join(bad)}); the checkpoints already saved '
                'are left as they were')
        options = dict(file_client_args=file_client_args,
                       save_optimizer=save_optimizer,
                       save_param_scheduler=save_param_scheduler, meta=meta,
                       by_epoch=by_epoch, backend_args=backend_args)
        if '://' in str(out_dir) or file_client_args or backend_args:
            return super().save_checkpoint(out_dir, filename, **options)
        tmp_name = f'.{filename}.tmp'
        tmp = osp.join(out_dir, tmp_name)
        try:
            super().save_checkpoint(out_dir, tmp_name, **options)
            atomic_replace(tmp, osp.join(out_dir, filename))
        finally:
            if osp.exists(tmp):
                os.remove(tmp)

    def test(self) -> dict:
        """Test, refusing random weights for models that must be trained.

        Raises:
            MissingCheckpointError: No ``load_from`` for a model that is not
                training-free, unless ``allow_random_weights = True``.
        """
        require_checkpoint(
            self.model, self._load_from,
            bool(self.cfg.get('allow_random_weights', False)),
            self.cfg.filename)
        return super().test()
