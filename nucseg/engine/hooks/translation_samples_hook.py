"""Save image grids of an image translator during training."""
import os.path as osp
from typing import Optional, Sequence

import numpy as np
from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from nucseg.registry import HOOKS
from nucseg.utils.io import write_image

__all__ = ['TranslationSamplesHook']


@HOOKS.register_module()
class TranslationSamplesHook(Hook):
    """Write ``real A | fake B | rec A`` (and B -> A) grids to look at.

    Every ``interval`` training iterations the images the model kept from
    that iteration (``model.last_outputs``: ``B x 3 x H x W`` tensors in
    the data preprocessor's normalised range, e.g. CycleGAN's) are turned
    back into uint8 and written to ``<work_dir>/<out_dir>/iter_<n>.png``:
    one row per image, columns as in ``rows``.

    Args:
        interval (int): Iterations between grids.
        max_images (int): Images per direction.
        rows (Sequence[Sequence[str]]): Columns of each kind of row.
        out_dir (str): Folder under the work dir.
    """

    priority = 'LOW'

    def __init__(self,
                 interval: int = 500,
                 max_images: int = 4,
                 rows: Sequence[Sequence[str]] = (('real_a', 'fake_b',
                                                   'rec_a'),
                                                  ('real_b', 'fake_a',
                                                   'rec_b')),
                 out_dir: str = 'samples') -> None:
        if interval < 1 or max_images < 1:
            raise ValueError('interval and max_images must be >= 1')
        self.interval = interval
        self.max_images = max_images
        self.rows = [tuple(r) for r in rows]
        self.out_dir = out_dir

    def grid(self, model) -> Optional[np.ndarray]:
        """The ``H x W x 3`` uint8 grid of the model's last outputs."""
        outputs = getattr(model, 'last_outputs', None) or {}
        if not outputs:
            return None
        missing = {k for r in self.rows for k in r} - set(outputs)
        if missing:
            raise KeyError(f'TranslationSamplesHook: the model kept no '
                           f'{sorted(missing)} (it has {sorted(outputs)})')
        pre = model.data_preprocessor
        lines = []
        for row in self.rows:
            images = [pre.to_uint8(outputs[k][:self.max_images]) for k in row]
            for i in range(len(images[0])):
                tiles = [img[i] for img in images]
                h = max(t.shape[0] for t in tiles)
                tiles = [
                    np.pad(t, ((0, h - t.shape[0]), (0, 2), (0, 0)),
                           constant_values=255) for t in tiles
                ]
                lines.append(np.concatenate(tiles, axis=1))
        width = max(line.shape[1] for line in lines)
        lines = [
            np.pad(line, ((0, 2), (0, width - line.shape[1]), (0, 0)),
                   constant_values=255) for line in lines
        ]
        return np.concatenate(lines, axis=0)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        if not self.every_n_train_iters(runner, self.interval) or \
                not is_main_process():
            return
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        grid = self.grid(model)
        if grid is not None:
            write_image(
                osp.join(runner.work_dir, self.out_dir,
                         f'iter_{runner.iter + 1}.png'), grid)
