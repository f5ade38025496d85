"""Weight-free multi-scale stain and texture filter bank.

A training-free, download-free feature extractor for SPROUT's similarity
mapping (or any method that needs dense features without a pretrained
backbone). The RGB input is decomposed into haematoxylin and eosin
concentrations (``S = pinv(Q) OD``, :func:`nucseg.utils.stain`), and each
stain channel is filtered with scale-normalised Gaussian derivatives at
every scale ``sigma``:

==============  ========  ==============================================
name            channels  response
==============  ========  ==============================================
``gaussian``    1         ``G_s * S``
``log``         1         ``s^2 (S_xx + S_yy)`` (Laplacian of Gaussian)
``gradient``    1         ``s |grad S|``
``hessian``     2         eigenvalues of ``s^2 [[S_xx, S_xy], [S_xy, S_yy]]``
``structure``   2         eigenvalues of ``G_r * (s^2 grad S grad S^T)``,
                          ``r = structure_scale * s``
==============  ========  ==============================================

(derivatives of ``G_s * S``; eigenvalues in decreasing order). The raw
stain concentrations come first (``include_raw``). Every response is
average-pooled onto the feature grid (``stride`` pixels per cell; partial
cells at the bottom/right average their valid pixels only) and, if
``standardize``, normalised per image and channel to zero mean and unit
variance. Channel order: raw stains, then for each stain, for each sigma,
the responses in the order of ``features``.

Implementation: separable correlations with sampled Gaussian-derivative
kernels (the kernels of :func:`scipy.ndimage.gaussian_filter`, radius
``int(truncate * sigma + 0.5)``, ``'mirror'`` borders), batched over images
and stains with ``conv2d``. With ``pyramid=True`` a scale ``s >= 2 d`` is
computed on the image pre-smoothed and average-pooled by ``d`` (a power of
two dividing ``stride``), with the residual scale
``sqrt(s^2 - v_d) / d`` (``v_d`` the variance of the pre-smoothing and
pooling); this is exact up to sub-sampling aliasing and much faster for
large scales; likewise the structure tensor's gradient products are
pooled before a large integration. ``pyramid=False`` filters everything at
full resolution. On 1000x1000 RGB with the defaults (58 channels) it took
0.6-0.9 s with one thread on a busy 2-core machine (scipy.ndimage: ~3.9 s);
see ``tools/analysis_tools/benchmark_sprout_priors.py``.
"""
import math
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor

from nucseg.registry import MODELS
from nucseg.utils.stain import he_matrix

__all__ = ['FilterBankExtractor', 'gaussian_kernel1d']

FEATURES = {'gaussian': 1, 'log': 1, 'gradient': 1, 'hessian': 2,
            'structure': 2}
STAINS = ('h', 'e')


def gaussian_kernel1d(sigma: float, order: int,
                      truncate: float = 4.0) -> np.ndarray:
    """Sampled derivative-of-Gaussian kernel as in :mod:`scipy.ndimage`.

    Args:
        sigma (float): Standard deviation in pixels.
        order (int): Derivative order (0, 1 or 2).
        truncate (float): Radius in standard deviations.

    Returns:
        np.ndarray: ``2r+1`` float64 *convolution* kernel ``k(t)``,
        ``t = -r..r`` (``k`` sums to 1 for order 0).
    """
    if order not in (0, 1, 2):
        raise ValueError(f'order must be 0, 1 or 2, got {order}')
    radius = int(truncate * float(sigma) + 0.5)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    s2 = float(sigma)**2
    phi = np.exp(-0.5 * x * x / s2)
    phi /= phi.sum()
    if order == 1:
        return -x / s2 * phi
    if order == 2:
        return (x * x / s2**2 - 1.0 / s2) * phi
    return phi


def _mirror_pad(x: Tensor, r: int) -> Tensor:
    """Pad both spatial dims by ``r`` with scipy's ``'mirror'`` rule.

    ``d c b | a b c d | c b a`` (torch's ``'reflect'``); also for ``r``
    larger than the image, where :func:`torch.nn.functional.pad` refuses.
    """
    if r == 0:
        return x
    h, w = x.shape[-2:]
    if r < h and r < w:
        return F.pad(x, (r, r, r, r), mode='reflect')
    for dim, n in ((2, h), (3, w)):
        idx = torch.arange(-r, n + r, device=x.device)
        if n == 1:
            idx = torch.zeros_like(idx)
        else:
            idx = idx % (2 * n - 2)
            idx = torch.where(idx >= n, 2 * n - 2 - idx, idx)
        x = x.index_select(dim, idx)
    return x


def _separable(x: Tensor, kx: Tensor, ky: Tensor) -> Tensor:
    """Depthwise separable correlation of ``1 x C x H x W`` maps.

    The maps are mirror-padded once, correlated along x (width) with
    ``kx`` (``(C * K) x L``: output channel ``c * K + k`` uses kernel row
    ``c * K + k`` on input channel ``c``), then each of the ``C * K`` maps
    along y with its row of ``ky`` (``(C * K) x L``). Depthwise ``conv2d``
    on channels-last tensors is several times faster on CPU than
    ``N x 1 x H x W`` convolutions (and than on channels-first ones).

    Returns:
        Tensor: ``1 x C' x H x W``.
    """
    r = (kx.shape[1] - 1) // 2
    if (ky.shape[1] - 1) // 2 != r:
        raise ValueError('kx and ky must have the same length')
    xp = _mirror_pad(x.contiguous(memory_format=torch.channels_last), r)
    xp = F.conv2d(xp, kx.view(kx.shape[0], 1, 1, -1), groups=x.shape[1])
    return F.conv2d(xp, ky.view(ky.shape[0], 1, -1, 1), groups=xp.shape[1])


def _sym_eig(a: Tensor, b: Tensor, c: Tensor) -> Tuple[Tensor, Tensor]:
    """Eigenvalues (larger, smaller) of ``[[a, b], [b, c]]``."""
    mean = 0.5 * (a + c)
    rad = torch.hypot(0.5 * (a - c), b)
    return mean + rad, mean - rad


def _pool(x: Tensor, factor: int) -> Tensor:
    if factor == 1:
        return x
    return F.avg_pool2d(x, factor, factor, ceil_mode=True)


@MODELS.register_module()
class FilterBankExtractor(BaseModule):
    """Multi-scale stain/texture filter bank (no weights).

    Interface of nucseg feature extractors: ``forward(img)`` with ``img``
    ``B x 3 x H x W`` float RGB in ``[0, 255]`` returns a ``B x D x h x w``
    feature grid, ``h = ceil(H / stride)``; attributes ``stride`` (pixels per
    feature cell) and ``out_channels`` (``D``).

    Args:
        sigmas (Sequence[float]): Scales in pixels (full resolution).
        stride (int): Pixels per feature cell (average pooling).
        features (Sequence[str]): Subset of ``gaussian``, ``log``,
            ``gradient``, ``hessian``, ``structure``.
        stains (Sequence[str]): Stain channels, subset of ``('h', 'e')``.
        include_raw (bool): Prepend the pooled raw concentrations.
        structure_scale (float): Integration scale of the structure tensor
            relative to ``sigma``.
        truncate (float): Kernel radius in standard deviations.
        pyramid (bool): Compute large scales on sub-sampled images (see the
            module docstring).
        standardize (bool): Per image and channel zero mean / unit std.
        eps (float): Lower bound of the std when standardising (constant
            channels become 0).
        stain_matrix (np.ndarray, optional): H&E matrix (see
            :func:`nucseg.utils.stain.stain_concentrations`).
        background (float): Incident light intensity ``I0``.
        init_cfg (dict, optional): Unused (no weights).
    """

    def __init__(self,
                 sigmas: Sequence[float] = (1.0, 2.0, 4.0, 8.0),
                 stride: int = 4,
                 features: Sequence[str] = ('gaussian', 'log', 'gradient',
                                            'hessian', 'structure'),
                 stains: Sequence[str] = STAINS,
                 include_raw: bool = True,
                 structure_scale: float = 2.0,
                 truncate: float = 4.0,
                 pyramid: bool = True,
                 standardize: bool = True,
                 eps: float = 1e-6,
                 stain_matrix: Optional[np.ndarray] = None,
                 background: float = 255.0,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.sigmas = tuple(float(s) for s in sigmas)
        if not self.sigmas or min(self.sigmas) <= 0:
            raise ValueError(f'sigmas must be positive, got {sigmas}')
        if int(stride) != stride or stride < 1:
            raise ValueError(f'stride must be a positive integer, got '
                             f'{stride}')
        unknown = set(features) - set(FEATURES)
        if unknown:
            raise ValueError(f'unknown features {sorted(unknown)}; choose '
                             f'from {list(FEATURES)}')
        bad = set(stains) - set(STAINS)
        if bad or not stains:
            raise ValueError(f'stains must be a non-empty subset of '
                             f'{STAINS}, got {stains}')
        if structure_scale <= 0 or truncate <= 0:
            raise ValueError('structure_scale and truncate must be > 0')
        self.stride = int(stride)
        self.features = tuple(features)
        self.stains = tuple(stains)
        self.include_raw = include_raw
        self.structure_scale = float(structure_scale)
        self.truncate = float(truncate)
        self.pyramid = pyramid
        self.standardize = standardize
        self.eps = eps
        self.background = float(background)
        pinv = np.linalg.pinv(he_matrix(stain_matrix))  # 2 x 3
        rows = [STAINS.index(s) for s in self.stains]
        self.register_buffer(
            'unmix', torch.as_tensor(pinv[rows], dtype=torch.float32),
            persistent=False)
        self.out_channels = len(self.stains) * (
            int(include_raw) + len(self.sigmas) *
            sum(FEATURES[f] for f in self.features))
        self.levels = [self._level(s) for s in self.sigmas]

    def _level(self, sigma: float) -> int:
        """Sub-sampling factor used for scale ``sigma``."""
        d = 1
        if self.pyramid:
            while (self.stride % (2 * d) == 0 and sigma / (2 * d) >= 2.0):
                d *= 2
        return d

    @staticmethod
    def _presmooth_var(d: int) -> float:
        """Variance (full-res px^2) of the pre-smoothing + pooling by d."""
        return (d / 2.0)**2 + (d * d - 1) / 12.0 if d > 1 else 0.0

    def _kernels(self, sigma: float, orders: Sequence[int], channels: int,
                 ref: Tensor, norm: float = 1.0) -> Tensor:
        """``(channels * len(orders)) x L`` correlation kernels.

        Correlation weights are the flipped convolution kernels, the kernel
        of order ``o`` multiplied by ``norm ** o`` (scale normalisation);
        the pattern ``orders`` repeats for every channel.
        """
        ks = [gaussian_kernel1d(sigma, o, self.truncate)[::-1] * norm**o
              for o in orders]
        k = torch.as_tensor(np.stack(ks), dtype=ref.dtype, device=ref.device)
        return k.repeat(channels, 1)

    def _smooth(self, x: Tensor, sigma: float) -> Tensor:
        """Gaussian smoothing of ``1 x C x H x W``."""
        k = self._kernels(sigma, (0, ), x.shape[1], x)
        return _separable(x, k, k)

    def _jet(self, x: Tensor, sigma: float,
             norm: float = 1.0) -> Dict[str, Tensor]:
        """Gaussian derivatives up to order 2 of ``1 x C x H x W``.

        Separable, x orders (0, 0, 0, 1, 1, 2) then y orders
        (0, 1, 2, 0, 1, 0). (Three x passes are computed twice: that is
        cheaper than re-indexing channels, which breaks the fast
        channels-last layout.) A derivative of total order ``n`` is
        multiplied by ``norm ** n``.
        """
        c = x.shape[1]
        y = _separable(
            x, self._kernels(sigma, (0, 0, 0, 1, 1, 2), c, x, norm),
            self._kernels(sigma, (0, 1, 2, 0, 1, 0), c, x, norm))
        return dict(g=y[:, 0::6], y=y[:, 1::6], yy=y[:, 2::6],
                    x=y[:, 3::6], xy=y[:, 4::6], xx=y[:, 5::6])

    def concentrations(self, img: Tensor) -> Tensor:
        """``B x S x H x W`` stain concentrations of ``B x 3 x H x W`` RGB."""
        od = -torch.log10(
            img.clamp(1.0, self.background) / self.background)
        return torch.einsum('bchw,sc->bshw', od, self.unmix.to(od.dtype))

    def _structure(self, jet: Dict[str, Tensor], sigma: float,
                   d: int) -> Tuple[List[Tensor], int]:
        """Structure-tensor eigenvalues at level ``d``.

        With ``pyramid`` the gradient products are average-pooled by ``p``
        before the integration when the integration scale allows it.

        Returns:
            tuple: Two ``1 x C x h x w`` maps and their sub-sampling factor
            (``d * p``) relative to the input.
        """
        gx, gy = jet['x'], jet['y']  # already scale-normalised
        prod = torch.stack([gx * gx, gx * gy, gy * gy], 2)
        c = gx.shape[1]
        prod = prod.flatten(1, 2)  # channel c*3 + j
        rho = self.structure_scale * sigma / d  # in level-d pixels
        p = 1
        if self.pyramid:
            while ((self.stride // d) % (2 * p) == 0
                   and rho / (2 * p) >= 2.0):
                p *= 2
        if p > 1:
            prod = _pool(prod, p)
            rho = math.sqrt(rho**2 - (p * p - 1) / 12.0) / p
        k = self._kernels(rho, (0, ), 3 * c, prod)
        prod = _separable(prod, k, k)
        return list(_sym_eig(prod[:, 0::3], prod[:, 1::3],
                             prod[:, 2::3])), d * p

    def _responses(self, x: Tensor, sigma: float,
                   d: int) -> List[Tuple[Tensor, int]]:
        """Scale-``sigma`` responses of the level-``d`` maps ``x``.

        Returns:
            list[tuple[Tensor, int]]: ``(1 x C x h x w map, sub-sampling
            factor)`` per output channel, in the order of ``features``.
        """
        s = math.sqrt(max(sigma**2 - self._presmooth_var(d), 0.0)) / d
        need_jet = set(self.features) - {'gaussian'}
        # Scale normalisation sigma^n d^-n (level-d pixels -> input pixels).
        j = (self._jet(x, s, sigma / d)
             if need_jet else dict(g=self._smooth(x, s)))
        out = []
        for name in self.features:
            if name == 'gaussian':
                out.append((j['g'], d))
            elif name == 'log':
                out.append((j['xx'] + j['yy'], d))
            elif name == 'gradient':
                out.append((torch.hypot(j['x'], j['y']), d))
            elif name == 'hessian':
                out.extend((e, d) for e in _sym_eig(j['xx'], j['xy'],
                                                    j['yy']))
            else:
                eig, f = self._structure(j, sigma, d)
                out.extend((e, f) for e in eig)
        return out

    def forward(self, img: Tensor) -> Tensor:
        """Filter-bank features.

        Args:
            img (Tensor): ``B x 3 x H x W`` float RGB in ``[0, 255]``.

        Returns:
            Tensor: ``B x D x ceil(H/stride) x ceil(W/stride)`` features.
        """
        if img.dim() != 4 or img.shape[1] != 3:
            raise ValueError('img must be B x 3 x H x W RGB, got shape '
                             f'{tuple(img.shape)}')
        if not img.is_floating_point():
            img = img.float()
        b, _, h, w = img.shape
        conc = self.concentrations(img)  # B x S x H x W
        # All maps of the batch as channels: channel b * S + s.
        x0 = conc.reshape(1, -1, h, w)
        levels = {1: x0}
        per_scale: List[Tensor] = []
        for sigma, d in zip(self.sigmas, self.levels):
            if d not in levels:
                levels[d] = _pool(self._smooth(x0, d / 2.0), d)
            resp = self._responses(levels[d], sigma, d)
            per_scale.append(torch.stack(
                [_pool(r, self.stride // f) for r, f in resp], 2))
        # 1 x (B*S) x F x h x w -> B x (S*F) x h x w (stain, scale, feature)
        feats = torch.cat(per_scale, 2)
        feats = feats.reshape(b, -1, *feats.shape[-2:]).contiguous()
        if self.include_raw:
            feats = torch.cat([_pool(conc, self.stride), feats], 1)
        if self.standardize:
            mean = feats.mean((2, 3), keepdim=True)
            std = feats.std((2, 3), keepdim=True, unbiased=False)
            feats = (feats - mean) / std.clamp_min(self.eps)
        return feats
