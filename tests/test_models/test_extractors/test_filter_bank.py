import numpy as np
import pytest
import torch
from scipy import ndimage as ndi

from nucseg.models.extractors.filter_bank import (FilterBankExtractor,
                                                  gaussian_kernel1d)
from nucseg.registry import MODELS
from nucseg.utils.stain import stain_concentrations


def _image(seed=0, h=40, w=36):
    rng = np.random.default_rng(seed)
    return ndi.gaussian_filter(rng.uniform(30, 250, (h, w, 3)), (1, 1, 0))


def _to_tensor(img):
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))[
        None]


def _eig(a, b, c):
    r = np.sqrt(((a - c) / 2)**2 + b**2)
    return (a + c) / 2 + r, (a + c) / 2 - r


def _scipy_bank(s, sig, rho_scale=2.0):
    """Reference responses with scipy.ndimage ('mirror' borders)."""
    kw = dict(mode='mirror')
    d = {o: ndi.gaussian_filter(s, sig, order=o, **kw)
         for o in [(0, 0), (0, 1), (1, 0), (0, 2), (2, 0), (1, 1)]}
    n1, n2 = sig, sig**2
    gx, gy = n1 * d[(0, 1)], n1 * d[(1, 0)]
    j = [ndi.gaussian_filter(p, rho_scale * sig, **kw)
         for p in (gx * gx, gx * gy, gy * gy)]
    return [
        d[(0, 0)],
        n2 * ndi.gaussian_laplace(s, sig, **kw),
        n1 * ndi.gaussian_gradient_magnitude(s, sig, **kw),
        *_eig(n2 * d[(0, 2)], n2 * d[(1, 1)], n2 * d[(2, 0)]),
        *_eig(*j),
    ]


def test_kernel_is_scipy_impulse_response():
    delta = np.zeros(41)
    delta[20] = 1.0
    for order in (0, 1, 2):
        k = gaussian_kernel1d(1.7, order)
        r = len(k) // 2
        resp = ndi.gaussian_filter1d(delta, 1.7, order=order,
                                     mode='constant')
        np.testing.assert_allclose(k, resp[20 - r:21 + r], atol=1e-12)
    assert gaussian_kernel1d(1.7, 1)[0] > 0  # convolution orientation


def test_matches_scipy_ndimage_at_full_resolution():
    img = _image()
    conc = stain_concentrations(img).astype(np.float64)
    sigmas = (1.0, 2.5)
    m = FilterBankExtractor(sigmas=sigmas, stride=1, pyramid=False,
                            standardize=False).double()
    out = m(_to_tensor(img)).numpy()[0]
    expected = [conc[..., 0], conc[..., 1]]
    for st in range(2):
        for sig in sigmas:
            expected += _scipy_bank(conc[..., st], sig)
    expected = np.stack(expected)
    assert out.shape == expected.shape == (m.out_channels, 40, 36)
    scale = np.abs(expected).max(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(out / scale, expected / scale, atol=1e-6)


def test_pooling_grid_and_stride():
    img = _image(1, 37, 50)
    m = FilterBankExtractor(sigmas=(1.0, ), stride=4, standardize=False)
    full = FilterBankExtractor(sigmas=(1.0, ), stride=1, standardize=False)
    x = _to_tensor(img).float()
    out, ref = m(x), full(x)
    assert m.stride == 4 and out.shape == (1, m.out_channels, 10, 13)
    # Cell (i, j) averages pixels [4i, 4i+4) x [4j, 4j+4); the last row
    # of cells averages the valid pixels only.
    torch.testing.assert_close(out[..., 2, 3],
                               ref[..., 8:12, 12:16].mean((-2, -1)))
    torch.testing.assert_close(out[..., 9, 0],
                               ref[..., 36:37, 0:4].mean((-2, -1)))


def test_pyramid_approximates_full_resolution():
    img = _image(2, 96, 96)
    x = _to_tensor(img).float()
    fast = FilterBankExtractor()(x)
    exact = FilterBankExtractor(pyramid=False)(x)
    assert FilterBankExtractor().levels == [1, 1, 2, 4]
    assert fast.shape == exact.shape == (1, 58, 24, 24)
    f = fast[0].flatten(1)
    e = exact[0].flatten(1)
    corr = ((f - f.mean(1, keepdim=True)) * (e - e.mean(1, keepdim=True))
            ).mean(1) / (f.std(1, unbiased=False) * e.std(1, unbiased=False))
    assert corr.min() > 0.97
    # Scales computed at full resolution in both are identical.
    torch.testing.assert_close(fast[:, :2], exact[:, :2])


def test_standardised_batched_and_registered():
    a, b = _image(3, 32, 32), _image(4, 32, 32)
    m = MODELS.build(dict(type='FilterBankExtractor', sigmas=(1, 2)))
    batch = m(torch.cat([_to_tensor(a), _to_tensor(b)]).float())
    assert batch.shape == (2, m.out_channels, 8, 8)
    torch.testing.assert_close(batch[1:], m(_to_tensor(b).float()),
                               rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(batch.mean((2, 3)), torch.zeros(2, 30),
                               atol=1e-4, rtol=0)
    torch.testing.assert_close(
        batch.std((2, 3), unbiased=False), torch.ones(2, 30), atol=1e-3,
        rtol=0)
    assert not list(m.parameters())


def test_mirror_padding_larger_than_image():
    """Kernels wider than the image still follow scipy's 'mirror' rule."""
    img = _image(5, 5, 7)
    conc = stain_concentrations(img).astype(np.float64)
    m = FilterBankExtractor(sigmas=(3.0, ), stride=1, pyramid=False,
                            standardize=False, features=('gaussian', ),
                            stains=('h', ), include_raw=False).double()
    out = m(_to_tensor(img)).numpy()[0, 0]
    np.testing.assert_allclose(
        out, ndi.gaussian_filter(conc[..., 0], 3.0, mode='mirror'),
        atol=1e-9)


def test_feature_and_stain_subsets_and_tiny_images():
    m = FilterBankExtractor(sigmas=(8.0, ), features=('gaussian', 'log'),
                            stains=('h', ), include_raw=False)
    assert m.out_channels == 2
    out = m(torch.full((1, 3, 6, 9), 128.0))  # smaller than the kernels
    assert out.shape == (1, 2, 2, 3) and torch.isfinite(out).all()
    with pytest.raises(ValueError, match='unknown features'):
        FilterBankExtractor(features=('sobel', ))
    with pytest.raises(ValueError, match='stains'):
        FilterBankExtractor(stains=('dab', ))
    with pytest.raises(ValueError, match='sigmas'):
        FilterBankExtractor(sigmas=(0, ))
    with pytest.raises(ValueError, match='B x 3 x H x W'):
        m(torch.zeros(3, 8, 8))
