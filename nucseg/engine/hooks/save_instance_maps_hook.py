"""Hook writing predicted instance maps to disk during testing."""
import os
import os.path as osp
from typing import Optional

from mmengine.hooks import Hook

from nucseg.registry import HOOKS
from nucseg.utils.io import write_label


@HOOKS.register_module()
class SaveInstanceMapsHook(Hook):
    """Write ``<out_dir>/<image stem>.png`` (uint16 instance map) per image.

    Args:
        out_dir (str): Output folder; a relative path is taken under the
            run's log folder ``<work_dir>/<timestamp>/``, like the overlays
            of :class:`InstanceOverlayHook` (and mmseg's ``--show-dir``);
            an absolute path is used as given.
    """

    priority = 'LOW'

    def __init__(self, out_dir: str) -> None:
        self.out_dir = out_dir
        self._written = 0
        self._dir: Optional[str] = None

    def before_test(self, runner) -> None:
        self._dir = osp.abspath(osp.join(runner.log_dir, self.out_dir))
        os.makedirs(self._dir, exist_ok=True)
        self._written = 0

    def after_test_iter(self, runner, batch_idx: int, data_batch=None,
                        outputs=None) -> None:
        for sample in outputs or []:
            stem = osp.splitext(osp.basename(sample.metainfo['img_path']))[0]
            inst = sample.pred_instance_map.data[0].cpu().numpy()
            write_label(osp.join(self._dir, f'{stem}.png'), inst)
            self._written += 1

    def after_test(self, runner) -> None:
        runner.logger.info(
            f'wrote {self._written} instance maps to {self._dir}')
