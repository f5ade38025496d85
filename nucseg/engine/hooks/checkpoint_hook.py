"""mmengine's CheckpointHook made safe against a run killed mid-save."""
import os.path as osp
from pathlib import Path
from typing import List, Optional, Sequence, Union

from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook as _MMEngineCheckpointHook

from nucseg.registry import HOOKS
from nucseg.utils.checkpoint import atomic_replace


@HOOKS.register_module()
class CheckpointHook(_MMEngineCheckpointHook):
    """mmengine's ``CheckpointHook`` with a crash-safe order of writes.

    Registered under mmengine's name in the ``nucseg`` scope, so every
    config's ``default_hooks.checkpoint = dict(type='CheckpointHook')``
    uses it (``type='mmengine.CheckpointHook'`` gets the original).
    Differences:

    * with ``max_keep_ckpts``, the oldest checkpoint is removed only
      *after* the new one is complete (mmengine removes it first, so a run
      killed during the save could be left without any checkpoint);
    * ``last_checkpoint`` is replaced atomically and names only complete
      checkpoints (:class:`~nucseg.engine.NucsegRunner` writes each file
      atomically and refuses non-finite model states).

    The arguments are mmengine's (see
    :class:`mmengine.hooks.CheckpointHook`), listed explicitly so that a
    misspelt key is an error; extra ``save_checkpoint`` arguments are not
    accepted.
    """

    def __init__(self,
                 interval: int = -1,
                 by_epoch: bool = True,
                 save_optimizer: bool = True,
                 save_param_scheduler: bool = True,
                 out_dir: Optional[Union[str, Path]] = None,
                 max_keep_ckpts: int = -1,
                 save_last: bool = True,
                 save_best: Union[str, List[str], None] = None,
                 rule: Union[str, List[str], None] = None,
                 greater_keys: Optional[Sequence[str]] = None,
                 less_keys: Optional[Sequence[str]] = None,
                 file_client_args: Optional[dict] = None,
                 filename_tmpl: Optional[str] = None,
                 backend_args: Optional[dict] = None,
                 published_keys: Union[str, List[str], None] = None,
                 save_begin: int = 0) -> None:
        super().__init__(
            interval=interval,
            by_epoch=by_epoch,
            save_optimizer=save_optimizer,
            save_param_scheduler=save_param_scheduler,
            out_dir=out_dir,
            max_keep_ckpts=max_keep_ckpts,
            save_last=save_last,
            save_best=save_best,
            rule=rule,
            greater_keys=greater_keys,
            less_keys=less_keys,
            file_client_args=file_client_args,
            filename_tmpl=filename_tmpl,
            backend_args=backend_args,
            published_keys=published_keys,
            save_begin=save_begin)

    def _save_checkpoint_with_step(self, runner, step: int,
                                   meta: dict) -> None:
        """Save ``step``; then point ``last_checkpoint`` at it; then drop
        the checkpoint that fell out of ``max_keep_ckpts``."""
        stale = None
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids and
                                            self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                stale = self.keep_ckpt_ids.popleft()
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids',
                                           list(self.keep_ckpt_ids))
        filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir, filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        runner.save_checkpoint(
            self.out_dir,
            filename,
            self.file_client_args,
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler,
            meta=meta,
            by_epoch=self.by_epoch,
            backend_args=self.backend_args,
            **self.args)
        if not is_main_process():
            return
        pointer = osp.join(runner.work_dir, 'last_checkpoint')
        tmp = osp.join(runner.work_dir, '.last_checkpoint.tmp')
        with open(tmp, 'w') as f:
            f.write(self.last_ckpt)
        atomic_replace(tmp, pointer)
        if stale is not None and stale != step:
            path = self.file_backend.join_path(
                self.out_dir, self.filename_tmpl.format(stale))
            if self.file_backend.isfile(path):
                self.file_backend.remove(path)
            elif self.file_backend.isdir(path):
                self.file_backend.rmtree(path)
