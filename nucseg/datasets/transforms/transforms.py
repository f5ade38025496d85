"""Augmentations that keep image and instance maps consistent.

Every geometric transform here is applied to ``results['img']`` and to all
keys in ``results['seg_fields']`` (instance maps, semantic targets) with
nearest-neighbour semantics, so instance ids are never interpolated.

For rescaling use mmseg's ``Resize`` / ``RandomResize`` in the ``nucseg``
scope: they resize every key of ``seg_fields`` with nearest interpolation
(mmcv's own ``Resize`` only handles ``gt_seg_map``).
"""
from typing import Optional, Sequence, Tuple, Union

import numpy as np
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness
from skimage.segmentation import find_boundaries

from nucseg.registry import TRANSFORMS
from nucseg.utils.stain import hed_to_rgb, rgb_to_hed


def _pair(size: Union[int, Sequence[int]], name: str) -> Tuple[int, int]:
    if isinstance(size, int):
        size = (size, size)
    size = tuple(int(s) for s in size)
    if len(size) != 2 or min(size) <= 0:
        raise ValueError(f'{name} must be a positive int or (h, w), got '
                         f'{size}')
    return size


@TRANSFORMS.register_module()
class RandomInstanceCrop(BaseTransform):
    """Randomly crop a patch, padding images smaller than the patch.

    Images smaller than ``crop_size`` (in either side) are padded on the
    bottom/right with ``pad_val`` (image) and 0 (label maps) first, so that
    every output has exactly ``crop_size``.

    Required keys: ``img``; optional ``seg_fields``.
    Modified keys: ``img``, ``img_shape``, every key in ``seg_fields``.

    Args:
        crop_size (int | tuple[int, int]): Output ``(h, w)``.
        pad_val (int): Image padding value. Defaults to 0.
        fg_prob (float): Probability of centring the crop choice on a random
            foreground pixel of ``gt_instance_map`` (so sparse images still
            yield nuclei); otherwise the crop is uniform. Defaults to 0.
    """

    def __init__(self,
                 crop_size: Union[int, Tuple[int, int]],
                 pad_val: int = 0,
                 fg_prob: float = 0.0) -> None:
        self.crop_size = _pair(crop_size, 'crop_size')
        if not 0.0 <= fg_prob <= 1.0:
            raise ValueError(f'fg_prob must be in [0, 1], got {fg_prob}')
        self.pad_val = pad_val
        self.fg_prob = fg_prob

    @staticmethod
    def _pad(arr: np.ndarray, h: int, w: int, val: int) -> np.ndarray:
        ph, pw = max(h - arr.shape[0], 0), max(w - arr.shape[1], 0)
        if ph == 0 and pw == 0:
            return arr
        pad = [(0, ph), (0, pw)] + [(0, 0)] * (arr.ndim - 2)
        return np.pad(arr, pad, mode='constant', constant_values=val)

    @cache_randomness
    def _offsets(self, h: int, w: int,
                 inst: Optional[np.ndarray]) -> Tuple[int, int]:
        ch, cw = self.crop_size
        if inst is not None and np.random.rand() < self.fg_prob:
            fg = np.flatnonzero(inst)
            if fg.size:
                # A crop uniformly placed among those containing a random
                # foreground pixel.
                y, x = divmod(int(fg[np.random.randint(fg.size)]), w)
                y0 = np.random.randint(max(0, y - ch + 1), min(y, h - ch) + 1)
                x0 = np.random.randint(max(0, x - cw + 1), min(x, w - cw) + 1)
                return y0, x0
        return (np.random.randint(0, h - ch + 1),
                np.random.randint(0, w - cw + 1))

    def transform(self, results: dict) -> dict:
        ch, cw = self.crop_size
        img = self._pad(results['img'], ch, cw, self.pad_val)
        fields = {
            k: self._pad(results[k], ch, cw, 0)
            for k in results.get('seg_fields', [])
        }
        y, x = self._offsets(img.shape[0], img.shape[1],
                             fields.get('gt_instance_map'))
        results['img'] = img[y:y + ch, x:x + cw].copy()
        for k, v in fields.items():
            results[k] = v[y:y + ch, x:x + cw].copy()
        results['img_shape'] = (ch, cw)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(crop_size={self.crop_size}, '
                f'pad_val={self.pad_val}, fg_prob={self.fg_prob})')


@TRANSFORMS.register_module()
class RandomFlipRot90(BaseTransform):
    """Random horizontal/vertical flip and rotation by a multiple of 90°.

    Together these generate the 8 symmetries of the square (dihedral group
    D4), the standard lossless augmentation for histology tiles.

    Modified keys: ``img``, ``img_shape``, keys in ``seg_fields``.
    Added keys: ``hflip``, ``vflip``, ``rot90_k`` (not mmseg's ``flip``,
    which test-time code would try to undo).

    Args:
        flip_prob (float): Probability of each of the two flips.
        rot_prob (float): Probability of rotating (k uniform in 1..3).
    """

    def __init__(self, flip_prob: float = 0.5, rot_prob: float = 0.5):
        for name, p in (('flip_prob', flip_prob), ('rot_prob', rot_prob)):
            if not 0.0 <= p <= 1.0:
                raise ValueError(f'{name} must be in [0, 1], got {p}')
        self.flip_prob = flip_prob
        self.rot_prob = rot_prob

    @cache_randomness
    def _draw(self) -> Tuple[bool, bool, int]:
        hflip = np.random.rand() < self.flip_prob
        vflip = np.random.rand() < self.flip_prob
        k = int(np.random.randint(1, 4)) if np.random.rand(
        ) < self.rot_prob else 0
        return hflip, vflip, k

    @staticmethod
    def _apply(arr: np.ndarray, hflip: bool, vflip: bool,
               k: int) -> np.ndarray:
        if hflip:
            arr = arr[:, ::-1]
        if vflip:
            arr = arr[::-1]
        if k:
            arr = np.rot90(arr, k, axes=(0, 1))
        return np.ascontiguousarray(arr)

    def transform(self, results: dict) -> dict:
        hflip, vflip, k = self._draw()
        for key in ['img'] + list(results.get('seg_fields', [])):
            results[key] = self._apply(results[key], hflip, vflip, k)
        results['img_shape'] = results['img'].shape[:2]
        results['hflip'], results['vflip'] = hflip, vflip
        results['rot90_k'] = k
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(flip_prob={self.flip_prob}, '
                f'rot_prob={self.rot_prob})')


@TRANSFORMS.register_module()
class HEDStainJitter(BaseTransform):
    """HED colour augmentation (Tellez et al., 2018).

    The RGB image is deconvolved into haematoxylin, eosin and DAB
    concentrations (:func:`nucseg.utils.stain.rgb_to_hed`); each channel
    ``c`` becomes ``c * a + b`` with ``a ~ U(1 - alpha, 1 + alpha)`` and
    ``b ~ U(-beta, beta)``; the result is recomposed to RGB.

    Required keys: ``img`` (``HxWx3`` uint8 RGB). Modified keys: ``img``.

    Args:
        alpha (float): Multiplicative jitter range. Defaults to 0.05.
        beta (float): Additive jitter range (OD units). Defaults to 0.02.
        prob (float): Probability of applying. Defaults to 1.0.
    """

    def __init__(self,
                 alpha: float = 0.05,
                 beta: float = 0.02,
                 prob: float = 1.0) -> None:
        if alpha < 0 or beta < 0:
            raise ValueError('alpha and beta must be >= 0, got '
                             f'{alpha}, {beta}')
        self.alpha = alpha
        self.beta = beta
        self.prob = prob

    @cache_randomness
    def _draw(self) -> Optional[Tuple[np.ndarray, np.ndarray]]:
        if np.random.rand() >= self.prob:
            return None
        a = np.random.uniform(1 - self.alpha, 1 + self.alpha, 3)
        b = np.random.uniform(-self.beta, self.beta, 3)
        return a.astype(np.float32), b.astype(np.float32)

    def transform(self, results: dict) -> dict:
        params = self._draw()
        if params is None:
            return results
        img = results['img']
        if img.ndim != 3 or img.shape[2] != 3:
            raise ValueError('HEDStainJitter needs an HxWx3 RGB image, got '
                             f'shape {img.shape} for '
                             f"{results.get('img_path', '<array>')}")
        a, b = params
        hed = rgb_to_hed(img.astype(np.uint8)) * a + b
        results['img'] = hed_to_rgb(hed)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(alpha={self.alpha}, '
                f'beta={self.beta}, prob={self.prob})')


@TRANSFORMS.register_module()
class GenerateNucleiTarget(BaseTransform):
    """Derive the semantic training target from the instance map.

    Run it after every geometric transform so the target matches the final
    instance map.

    Modes:
        - ``'binary'``: 0 background, 1 nucleus.
        - ``'contour'``: 0 background, 1 nucleus interior, 2 nucleus
          boundary (the inner ``boundary_width`` pixels of each instance,
          including the pixels where two instances touch). This is the
          three-class target of DCAN / HoVer-Net-style contour models.

    Required keys: ``gt_instance_map``.
    Added keys: ``gt_seg_map`` (uint8), appended to ``seg_fields``.

    Args:
        mode (str): ``'binary'`` or ``'contour'``. Defaults to
            ``'contour'``.
        boundary_width (int): Boundary thickness in pixels. Defaults to 1.
    """

    MODES = ('binary', 'contour')

    def __init__(self, mode: str = 'contour', boundary_width: int = 1):
        if mode not in self.MODES:
            raise ValueError(f'mode must be one of {self.MODES}, got '
                             f'{mode!r}')
        if boundary_width < 1:
            raise ValueError('boundary_width must be >= 1')
        self.mode = mode
        self.boundary_width = boundary_width

    def transform(self, results: dict) -> dict:
        inst = results['gt_instance_map']
        target = (inst > 0).astype(np.uint8)
        if self.mode == 'contour':
            target[nuclei_boundaries(inst, self.boundary_width)] = 2
        results['gt_seg_map'] = target
        seg_fields = results.setdefault('seg_fields', [])
        if 'gt_seg_map' not in seg_fields:
            seg_fields.append('gt_seg_map')
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(mode={self.mode!r}, '
                f'boundary_width={self.boundary_width})')


def nuclei_boundaries(inst: np.ndarray, width: int = 1) -> np.ndarray:
    """Inner boundary pixels of every instance (``HxW`` bool).

    A pixel is a boundary pixel if it belongs to an instance and one of its
    4-neighbours within ``width`` steps belongs to another id (including
    background).
    """
    boundary = find_boundaries(inst, connectivity=1, mode='inner')
    cur = inst
    for _ in range(width - 1):
        # Erode each instance by one pixel: pixels already marked are
        # removed and the next inner ring is found.
        cur = np.where(boundary, 0, cur)
        boundary |= find_boundaries(cur, connectivity=1, mode='inner')
    return boundary & (inst > 0)
