"""Grey EM input for SAMDA's two branches (U-Net and SAM).

nucseg pipelines load every image as ``H x W x 3`` RGB uint8 (a grey EM
slice becomes three equal channels). SAMDA feeds the same image to two
networks with different input conventions, and this preprocessor makes
both explicit:

* :meth:`SAMDADataPreprocessor.forward` stacks the batch and converts it to
  one grey channel in ``[0, 255]`` (``B x 1 x H x W`` float): the exact
  grey value for grey-as-RGB images, ITU-R 601 luma for colour images.
  This is what the segmentor receives as ``inputs``.
* :meth:`unet_input`: the U-Net's 1-channel input, z-scored per image
  (nnU-Net's ``ZScoreNormalization`` for non-CT data), or with a fixed
  ``unet_mean`` / ``unet_std``.
* :meth:`sam_input`: SAM's 3-channel input: the grey channel repeated 3
  times, resized so that the longer side is ``sam_size`` (bilinear,
  anti-aliased; SAM's ``ResizeLongestSide``), normalised with SAM's pixel
  mean/std and zero-padded (after normalisation) to ``sam_size x
  sam_size``, exactly as ``segment_anything`` prepares images. The valid
  (unpadded) size is returned so that the SAM features of the padding can
  be cropped away.

The segmentor calls the last two on every (sliding-window) crop, so the
two branches always see the same pixels.
"""
from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmengine.model import BaseDataPreprocessor
from torch import Tensor

from nucseg.models.utils.sam import SAM_PIXEL_MEAN, SAM_PIXEL_STD
from nucseg.registry import MODELS

__all__ = ['SAMDADataPreprocessor']

#: ITU-R BT.601 luma weights (as OpenCV's RGB -> grey).
LUMA_WEIGHTS = (0.299, 0.587, 0.114)


@MODELS.register_module()
class SAMDADataPreprocessor(BaseDataPreprocessor):
    """Batch grey images; build the U-Net and SAM inputs from them.

    Args:
        sam_size (int): Side of SAM's square input (1024 for the official
            SAM, MedSAM; 256 for SAM-Med2D; small for the tiny test SAM).
        sam_mean (Sequence[float]): SAM's pixel mean (RGB, 0-255 scale).
        sam_std (Sequence[float]): SAM's pixel std.
        unet_mean (float, optional): Fixed U-Net normalisation mean;
            None = per-image z-score.
        unet_std (float, optional): Fixed U-Net normalisation std (with
            ``unet_mean``).
        non_blocking (bool): Non-blocking host-to-device copies.

    Shape:
        - forward: ``inputs`` list of ``C x H x W`` uint8 tensors (``C`` 1,
          3 or 4) of one size -> ``B x 1 x H x W`` float32 in [0, 255]
        - unet_input: ``B x 1 x H x W`` -> ``B x 1 x H x W``
        - sam_input: ``B x 1 x H x W`` -> ``B x 3 x S x S`` and the valid
          ``(h, w)`` inside it
    """

    def __init__(self,
                 sam_size: int = 1024,
                 sam_mean: Sequence[float] = SAM_PIXEL_MEAN,
                 sam_std: Sequence[float] = SAM_PIXEL_STD,
                 unet_mean: Optional[float] = None,
                 unet_std: Optional[float] = None,
                 non_blocking: bool = False) -> None:
        super().__init__(non_blocking=non_blocking)
        if int(sam_size) <= 0 or int(sam_size) % 16:
            raise ValueError('SAMDADataPreprocessor: sam_size must be a '
                             f'positive multiple of 16, got {sam_size}')
        if len(sam_mean) != 3 or len(sam_std) != 3 or min(sam_std) <= 0:
            raise ValueError('SAMDADataPreprocessor: sam_mean and sam_std '
                             'need 3 values each, std > 0')
        if (unet_mean is None) != (unet_std is None):
            raise ValueError('SAMDADataPreprocessor: give both unet_mean '
                             'and unet_std, or neither (per-image z-score)')
        if unet_std is not None and unet_std <= 0:
            raise ValueError(f'unet_std must be > 0, got {unet_std}')
        self.sam_size = int(sam_size)
        self.unet_mean = unet_mean
        self.unet_std = unet_std
        self.register_buffer(
            'sam_mean', torch.tensor(sam_mean, dtype=torch.float32).view(
                1, 3, 1, 1), False)
        self.register_buffer(
            'sam_std', torch.tensor(sam_std, dtype=torch.float32).view(
                1, 3, 1, 1), False)
        self.register_buffer(
            'luma', torch.tensor(LUMA_WEIGHTS, dtype=torch.float32).view(
                1, 3, 1, 1), False)

    # ------------------------------------------------------------------
    def to_grey(self, img: Tensor) -> Tensor:
        """``B x C x H x W`` (C = 1, 3 or 4) -> ``B x 1 x H x W`` float.

        Three equal channels give their value exactly; other RGB images
        are converted with the BT.601 luma weights; a 4th (alpha) channel
        is dropped.
        """
        if img.dim() != 4:
            raise ValueError(f'expected BxCxHxW images, got '
                             f'{tuple(img.shape)}')
        img = img.float()
        c = img.shape[1]
        if c == 4:
            img, c = img[:, :3], 3
        if c == 1:
            return img
        if c != 3:
            raise ValueError(f'SAMDADataPreprocessor: images must have 1, 3 '
                             f'or 4 channels, got {c}')
        same = (img[:, 1:] == img[:, :1]).all(dim=1, keepdim=True)
        luma = (img * self.luma.to(img.device)).sum(1, keepdim=True)
        return torch.where(same, img[:, :1], luma)

    def forward(self, data: dict, training: bool = False) -> dict:
        """Stack the batch and convert it to grey ``B x 1 x H x W``."""
        data = self.cast_data(data)
        inputs = data['inputs']
        if isinstance(inputs, Tensor) and inputs.dim() == 4:
            batch = inputs
        else:
            shapes = {tuple(x.shape) for x in inputs}
            if len(shapes) != 1:
                raise ValueError(
                    'SAMDADataPreprocessor: the images of a batch differ in '
                    f'size ({sorted(shapes)}); crop them to one size in '
                    'training pipelines and use batch_size=1 for testing')
            batch = torch.stack(list(inputs))
        return dict(
            inputs=self.to_grey(batch),
            data_samples=data.get('data_samples', None))

    # ------------------------------------------------------------------
    def unet_input(self, grey: Tensor) -> Tensor:
        """The U-Net's input: z-score per image (or fixed mean/std)."""
        if self.unet_mean is not None:
            return (grey - self.unet_mean) / self.unet_std
        mean = grey.mean(dim=(1, 2, 3), keepdim=True)
        std = grey.std(dim=(1, 2, 3), keepdim=True, correction=0)
        return (grey - mean) / std.clamp(min=1e-8)

    def sam_valid_size(self, h: int, w: int) -> Tuple[int, int]:
        """Size of an ``h x w`` image resized to the longest side."""
        scale = self.sam_size / max(h, w)
        return int(h * scale + 0.5), int(w * scale + 0.5)

    def sam_input(self, grey: Tensor) -> Tuple[Tensor, Tuple[int, int]]:
        """SAM's input and the valid size inside the padded square.

        Args:
            grey (Tensor): ``B x 1 x H x W`` in [0, 255].

        Returns:
            tuple: ``B x 3 x S x S`` normalised, zero-padded input and the
            ``(h, w)`` of the resized image in its top-left corner.
        """
        h, w = grey.shape[-2:]
        nh, nw = self.sam_valid_size(h, w)
        x = grey
        if (nh, nw) != (h, w):
            x = F.interpolate(
                x, size=(nh, nw), mode='bilinear', align_corners=False,
                antialias=nh < h or nw < w)
        x = (x.expand(-1, 3, -1, -1) - self.sam_mean.to(x.device)) / \
            self.sam_std.to(x.device)
        s = self.sam_size
        if (nh, nw) != (s, s):
            x = F.pad(x, (0, s - nw, 0, s - nh), value=0.0)
        return x, (nh, nw)
