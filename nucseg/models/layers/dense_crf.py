"""Fully connected CRF (Kraehenbuehl & Koltun, 2011) on class probabilities.

The project's single dense-CRF implementation: SPROUT refines its
activation maps with it (Sec. 3.2) and the self-ensembling UDA method
post-processes its predictions with it. Inference is the mean-field
approximation of ``pydensecrf`` (package ``pydensecrf2``, imported as
``pydensecrf.densecrf``) with two Potts pairwise kernels::

    k(i, j) = w_g exp(-|p_i - p_j|^2 / (2 sxy_g^2))
            + w_b exp(-|p_i - p_j|^2 / (2 sxy_b^2) - |I_i - I_j|^2 /
                      (2 srgb^2))

(``w`` = ``compat``). The unary is ``-log(clip(p, clip, 1))``.

Building the pairwise lattices costs about as much as 10 mean-field
iterations; :meth:`DenseCRF.bind` builds them once for an image and reuses
them for several probability maps (e.g. SPROUT's POT-Scan steps).
"""
from typing import Union

import cv2
import numpy as np
import torch

from nucseg.registry import TASK_UTILS

__all__ = ['dense_crf', 'DenseCRF', 'BoundDenseCRF']

ArrayLike = Union[np.ndarray, torch.Tensor]


def _import_dcrf():
    try:
        import pydensecrf.densecrf as dcrf
        from pydensecrf.utils import unary_from_softmax
    except ImportError as err:  # pragma: no cover - depends on the env
        raise ImportError(
            'dense_crf needs pydensecrf: pip install pydensecrf2 (imports '
            'as pydensecrf.densecrf)') from err
    return dcrf, unary_from_softmax


def _as_numpy(x: ArrayLike) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _check_image(image: ArrayLike) -> np.ndarray:
    image = _as_numpy(image)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f'image must be HxWx3 RGB, got shape {image.shape}')
    if image.dtype != np.uint8:
        raise TypeError(f'image must be uint8, got {image.dtype}')
    return np.ascontiguousarray(image)


def _check_probs(probs: ArrayLike, shape: tuple, normalize: bool,
                 atol: float) -> np.ndarray:
    probs = _as_numpy(probs).astype(np.float32)
    if probs.ndim != 3:
        raise ValueError(f'probs must be CxHxW, got shape {probs.shape}')
    if probs.shape[1:] != shape:
        raise ValueError(f'probs {probs.shape[1:]} and image {shape} differ '
                         'in size')
    if probs.shape[0] < 2:
        raise ValueError('probs needs at least 2 classes, got '
                         f'{probs.shape[0]}')
    if not np.isfinite(probs).all():
        raise ValueError('probs contains NaN or inf')
    if (probs < 0).any():
        raise ValueError(f'probs must be non-negative (min {probs.min()})')
    total = probs.sum(0, keepdims=True)
    if normalize:
        c = probs.shape[0]
        zero = total <= 0
        probs = np.where(zero, 1.0 / c, probs / np.where(zero, 1.0, total))
    elif np.abs(total - 1).max() > atol:
        raise ValueError('probs must sum to 1 over classes (max deviation '
                         f'{np.abs(total - 1).max():.3g}); pass normalize='
                         'True to normalise non-negative scores')
    return np.ascontiguousarray(probs, dtype=np.float32)


def _check_params(iters: int, gaussian_sxy: float, bilateral_sxy: float,
                  bilateral_srgb: float, clip: float) -> None:
    if int(iters) != iters or iters < 0:
        raise ValueError(f'iters must be a non-negative integer, got {iters}')
    for name, val in (('gaussian_sxy', gaussian_sxy),
                      ('bilateral_sxy', bilateral_sxy),
                      ('bilateral_srgb', bilateral_srgb)):
        if not val > 0:
            raise ValueError(f'{name} must be > 0, got {val}')
    if not 0 < clip < 1:
        raise ValueError(f'clip must be in (0, 1), got {clip}')


class BoundDenseCRF:
    """A dense CRF with its pairwise terms built for one image.

    Made by :meth:`DenseCRF.bind`; ``bound(probs)`` equals
    ``dense_crf(image, probs, **params)`` for ``C x H x W`` ``probs`` with
    the bound number of classes, without rebuilding the lattices.

    With ``scale < 1`` the CRF runs on the image and probabilities
    downsampled by ``scale`` (area averaging), with both spatial kernel
    widths scaled alike so that they keep their size in the full image,
    and the marginals are upsampled back (bilinear): the cost falls with
    ``scale ** 2``.
    """

    def __init__(self, image: ArrayLike, num_classes: int, iters: int = 10,
                 gaussian_sxy: float = 1.0, gaussian_compat: float = 3.0,
                 bilateral_sxy: float = 67.0, bilateral_srgb: float = 3.0,
                 bilateral_compat: float = 4.0, clip: float = 1e-5,
                 normalize: bool = False, atol: float = 1e-3,
                 scale: float = 1.0) -> None:
        _check_params(iters, gaussian_sxy, bilateral_sxy, bilateral_srgb,
                      clip)
        if num_classes < 2:
            raise ValueError(f'num_classes must be >= 2, got {num_classes}')
        if not 0 < scale <= 1:
            raise ValueError(f'scale must be in (0, 1], got {scale}')
        dcrf, self._unary_from_softmax = _import_dcrf()
        image = _check_image(image)
        self.shape = image.shape[:2]
        self.num_classes = int(num_classes)
        self.iters, self.clip = int(iters), clip
        self.normalize, self.atol = normalize, atol
        self.scale = float(scale)
        h, w = self.shape
        if self.scale < 1:
            h, w = max(1, round(h * scale)), max(1, round(w * scale))
            image = np.ascontiguousarray(
                cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA))
            gaussian_sxy, bilateral_sxy = (gaussian_sxy * scale,
                                           bilateral_sxy * scale)
        self._grid = (h, w)
        self._crf = dcrf.DenseCRF2D(w, h, self.num_classes)
        if gaussian_compat:
            self._crf.addPairwiseGaussian(
                sxy=gaussian_sxy, compat=gaussian_compat)
        if bilateral_compat:
            self._crf.addPairwiseBilateral(
                sxy=bilateral_sxy, srgb=bilateral_srgb, rgbim=image,
                compat=bilateral_compat)

    def __call__(self, probs: ArrayLike) -> np.ndarray:
        """``C x H x W`` probabilities -> ``C x H x W`` float32 marginals."""
        probs = _check_probs(probs, self.shape, self.normalize, self.atol)
        if probs.shape[0] != self.num_classes:
            raise ValueError(f'probs has {probs.shape[0]} classes, the CRF '
                             f'was bound with {self.num_classes}')
        full = probs.shape
        if self._grid != self.shape:
            h, w = self._grid
            probs = np.stack([
                cv2.resize(c, (w, h), interpolation=cv2.INTER_AREA)
                for c in probs
            ])
        unary = self._unary_from_softmax(probs, clip=self.clip)
        self._crf.setUnaryEnergy(np.ascontiguousarray(unary))
        q = np.asarray(self._crf.inference(self.iters), dtype=np.float32)
        q = q.reshape(probs.shape)
        if self._grid != self.shape:
            q = np.stack([
                cv2.resize(c, (full[2], full[1]),
                           interpolation=cv2.INTER_LINEAR) for c in q
            ])
            q /= q.sum(0, keepdims=True)
        return q


def dense_crf(image: ArrayLike,
              probs: ArrayLike,
              iters: int = 10,
              gaussian_sxy: float = 1.0,
              gaussian_compat: float = 3.0,
              bilateral_sxy: float = 67.0,
              bilateral_srgb: float = 3.0,
              bilateral_compat: float = 4.0,
              clip: float = 1e-5,
              normalize: bool = False,
              atol: float = 1e-3) -> np.ndarray:
    """Dense-CRF marginals of per-pixel class probabilities.

    Defaults are SPROUT's (authors' code): 10 iterations, Gaussian kernel
    ``sxy=1, compat=3``, bilateral kernel ``sxy=67, srgb=3, compat=4``.
    A ``compat`` of 0 drops that kernel.

    Args:
        image (np.ndarray | Tensor): ``HxWx3`` uint8 RGB image (the
            bilateral kernel's colour features).
        probs (np.ndarray | Tensor): ``CxHxW`` (``C >= 2``) non-negative
            probabilities summing to 1 over ``C`` (within ``atol``).
        iters (int): Mean-field iterations; 0 returns the normalised,
            clipped unary ``softmax(log clip(p))``.
        gaussian_sxy (float): Spatial std (pixels) of the smoothness kernel.
        gaussian_compat (float): Potts weight of the smoothness kernel.
        bilateral_sxy (float): Spatial std (pixels) of the appearance
            kernel.
        bilateral_srgb (float): Colour std (0..255 units) of the appearance
            kernel.
        bilateral_compat (float): Potts weight of the appearance kernel.
        clip (float): Probabilities are clipped to ``[clip, 1]`` before the
            log (a zero probability would be an infinite energy).
        normalize (bool): Divide non-negative scores by their per-pixel sum
            (pixels with zero sum become uniform) instead of requiring
            probabilities.
        atol (float): Tolerance of the sum-to-one check.

    Returns:
        np.ndarray: ``CxHxW`` float32 marginals (each pixel sums to 1).
    """
    _check_params(iters, gaussian_sxy, bilateral_sxy, bilateral_srgb, clip)
    image = _check_image(image)
    probs = _check_probs(probs, image.shape[:2], normalize, atol)
    bound = BoundDenseCRF(
        image, probs.shape[0], iters=iters, gaussian_sxy=gaussian_sxy,
        gaussian_compat=gaussian_compat, bilateral_sxy=bilateral_sxy,
        bilateral_srgb=bilateral_srgb, bilateral_compat=bilateral_compat,
        clip=clip, normalize=False, atol=atol)
    return bound(probs)


@TASK_UTILS.register_module()
class DenseCRF:
    """Callable holding the parameters of :func:`dense_crf`.

    ``DenseCRF(**params)(image, probs)`` equals
    ``dense_crf(image, probs, **params)``; see there for the arguments.
    ``DenseCRF(**params).bind(image, num_classes)`` returns a
    :class:`BoundDenseCRF` that reuses the image's pairwise terms.
    ``scale < 1`` runs the CRF on a downsampled grid (see
    :class:`BoundDenseCRF`).
    """

    def __init__(self,
                 iters: int = 10,
                 gaussian_sxy: float = 1.0,
                 gaussian_compat: float = 3.0,
                 bilateral_sxy: float = 67.0,
                 bilateral_srgb: float = 3.0,
                 bilateral_compat: float = 4.0,
                 clip: float = 1e-5,
                 normalize: bool = False,
                 atol: float = 1e-3,
                 scale: float = 1.0) -> None:
        _check_params(iters, gaussian_sxy, bilateral_sxy, bilateral_srgb,
                      clip)
        if not 0 < scale <= 1:
            raise ValueError(f'scale must be in (0, 1], got {scale}')
        self.scale = float(scale)
        self.params = dict(
            iters=iters, gaussian_sxy=gaussian_sxy,
            gaussian_compat=gaussian_compat, bilateral_sxy=bilateral_sxy,
            bilateral_srgb=bilateral_srgb,
            bilateral_compat=bilateral_compat, clip=clip,
            normalize=normalize, atol=atol)

    def __call__(self, image: ArrayLike, probs: ArrayLike) -> np.ndarray:
        """Return ``CxHxW`` marginals (see :func:`dense_crf`)."""
        if self.scale < 1:
            return self.bind(image, np.shape(probs)[0])(probs)
        return dense_crf(image, probs, **self.params)

    def bind(self, image: ArrayLike, num_classes: int = 2) -> BoundDenseCRF:
        """Build the pairwise terms of ``image`` once for many calls."""
        return BoundDenseCRF(image, num_classes, scale=self.scale,
                             **self.params)

    def __repr__(self) -> str:
        args = ', '.join(f'{k}={v}' for k, v in self.params.items())
        return f'{type(self).__name__}({args})'
