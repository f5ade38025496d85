"""Hook writing instance overlay pictures during validation/testing."""
import os
import os.path as osp
from typing import Optional, Sequence

import numpy as np
from mmengine.hooks import Hook

from nucseg.registry import HOOKS
from nucseg.utils.io import read_image, write_image
from nucseg.visualization import make_comparison_panel


@HOOKS.register_module()
class InstanceOverlayHook(Hook):
    """Save ``image | GT | prediction`` panels of predicted instance maps.

    Runs after each test (and optionally validation) iteration and writes
    ``<log_dir>/<out_dir>/<name>.png`` for the first ``max_images`` samples
    of the run. Samples need ``img_path`` in their metainfo and a
    ``pred_instance_map``.

    Args:
        out_dir (str): Sub-folder of the run's log directory.
        max_images (int): Maximum number of panels per run; -1 writes one
            for every image.
        on_val (bool): Also write panels during validation (into
            ``<out_dir>/iter_<n>``). Defaults to False.
    """

    priority = 'LOW'

    def __init__(self,
                 out_dir: str = 'overlays',
                 max_images: int = 16,
                 on_val: bool = False) -> None:
        self.out_dir = out_dir
        self.max_images = max_images
        self.on_val = on_val
        self._count = 0
        self._dir: Optional[str] = None

    def _start(self, runner, sub: str = '') -> None:
        self._count = 0
        self._dir = osp.join(runner.log_dir, self.out_dir, sub)
        os.makedirs(self._dir, exist_ok=True)

    def before_test(self, runner) -> None:
        self._start(runner)

    def before_val(self, runner) -> None:
        if self.on_val:
            self._start(runner, f'iter_{runner.iter}')

    def _write(self, outputs: Sequence) -> None:
        for sample in outputs:
            if 0 <= self.max_images <= self._count:
                return
            if 'pred_instance_map' not in sample:
                continue
            path = sample.metainfo['img_path']
            img = read_image(path)
            pred = sample.pred_instance_map.data[0].cpu().numpy()
            gt = (sample.gt_instance_map.data[0].cpu().numpy()
                  if 'gt_instance_map' in sample else None)
            if gt is not None and gt.shape != img.shape[:2]:
                gt = None
            name = osp.splitext(osp.basename(path))[0]
            panel = make_comparison_panel(img, pred.astype(np.int64), gt,
                                          title=name)
            write_image(osp.join(self._dir, f'{name}.png'), panel)
            self._count += 1

    def after_test_iter(self, runner, batch_idx: int, data_batch=None,
                        outputs=None) -> None:
        self._write(outputs or [])

    def after_val_iter(self, runner, batch_idx: int, data_batch=None,
                       outputs=None) -> None:
        if self.on_val:
            self._write(outputs or [])
