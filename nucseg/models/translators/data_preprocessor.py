"""Data preprocessor for unpaired image pairs (CycleGAN)."""
from typing import Dict, Sequence, Union

import numpy as np
import torch
from mmengine.model import BaseDataPreprocessor
from torch import Tensor

from nucseg.registry import MODELS

__all__ = ['UnpairedDataPreprocessor']


@MODELS.register_module()
class UnpairedDataPreprocessor(BaseDataPreprocessor):
    """Stack and scale the images of each domain to ``[-1, 1]``.

    Input ``data['inputs']`` is ``{'img_a': [3xHxW uint8, ...], 'img_b':
    [...]}`` (from :class:`~nucseg.datasets.UnpairedNucleiDataset`); the
    output holds ``B x 3 x H x W`` float tensors ``(x - mean) / std``.

    Args:
        mean (float): Subtracted value (127.5 maps ``[0, 255]`` to
            ``[-1, 1]`` with ``std=127.5``).
        std (float): Divisor.
        keys (Sequence[str]): Input keys to process.
    """

    def __init__(self,
                 mean: float = 127.5,
                 std: float = 127.5,
                 keys: Sequence[str] = ('img_a', 'img_b')) -> None:
        super().__init__()
        if std <= 0:
            raise ValueError(f'std must be positive, got {std}')
        self.mean, self.std = float(mean), float(std)
        self.keys = tuple(keys)

    def to_model(self, images: Union[Tensor, Sequence[Tensor]],
                 name: str = 'images') -> Tensor:
        """``B x 3 x H x W`` (or a list of ``3 x H x W``) uint8 ->
        normalised float on the model's device."""
        if isinstance(images, (list, tuple)):
            shapes = {tuple(t.shape) for t in images}
            if len(shapes) != 1:
                raise ValueError(f'{name}: images of one batch must have '
                                 f'the same size, got {sorted(shapes)}; '
                                 'crop or resize them in the pipeline')
            images = torch.stack(list(images))
        images = images.to(self.device).float()
        return (images - self.mean) / self.std

    def to_uint8(self, images: Tensor) -> np.ndarray:
        """Model output ``B x 3 x H x W`` -> ``B x H x W x 3`` uint8."""
        out = images.detach().float() * self.std + self.mean
        return out.round().clamp(0, 255).byte().permute(0, 2, 3,
                                                        1).cpu().numpy()

    def forward(self, data: dict, training: bool = False) -> Dict:
        """Normalise every key of ``data['inputs']``.

        Raises:
            KeyError: A configured key is missing from the inputs.
        """
        inputs = data['inputs']
        missing = [k for k in self.keys if k not in inputs]
        if missing:
            raise KeyError(f'UnpairedDataPreprocessor: inputs have no '
                           f'{missing} (keys: {sorted(inputs)})')
        out = {k: self.to_model(inputs[k], k) for k in self.keys}
        samples = data.get('data_samples')
        if samples is not None:
            samples = self.cast_data(samples)
        return dict(inputs=out, data_samples=samples)
