"""nucseg.utils.morphology equals scikit-image's reconstruction and
h-maxima bit for bit (plateaus, borders, several maxima), on distance
maps of touching nuclei and on random smooth images."""
import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage import morphology as skm

from nucseg.utils.morphology import h_maxima, reconstruction_by_dilation


def _touching_nuclei(rng, size=160, n=40):
    yy, xx = np.mgrid[:size, :size]
    fg = np.zeros((size, size), bool)
    for cy, cx, r in zip(rng.uniform(0, size, n), rng.uniform(0, size, n),
                         rng.uniform(4, 14, n)):
        fg |= (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
    return ndi.gaussian_filter(ndi.distance_transform_edt(fg), 2.0)


@pytest.mark.parametrize('seed', range(6))
def test_h_maxima_equals_skimage(seed):
    rng = np.random.default_rng(seed)
    dist = _touching_nuclei(rng)
    for h in (0.25, 1.0, 3.0):
        ours = h_maxima(dist, h)
        assert ours.dtype == np.uint8
        np.testing.assert_array_equal(ours, skm.h_maxima(dist, h))
    # Random smooth images with plateaus (quantised), maxima on borders.
    x = ndi.gaussian_filter(rng.random((61, 83)), rng.uniform(0.5, 4))
    x = np.round(x * rng.choice([10, 1000, 1e6])) / 7.0
    for frac in (0.05, 0.2, 0.5):
        h = frac * np.ptp(x)
        np.testing.assert_array_equal(h_maxima(x, h), skm.h_maxima(x, h))


def test_reconstruction_equals_skimage_and_edge_cases():
    rng = np.random.default_rng(7)
    mask = ndi.gaussian_filter(rng.random((50, 70)), 2)
    seed = mask - 0.05
    np.testing.assert_array_equal(
        reconstruction_by_dilation(seed, mask),
        skm.reconstruction(seed, mask, method='dilation'))
    # A seed above the mask is clipped; a single bright pixel floods its
    # whole 8-connected plateau and nothing else.
    mask = np.zeros((9, 9))
    mask[2:5, 2:5] = 1.0
    mask[6, 6] = 1.0  # diagonal neighbour of nothing in the plateau
    seed = np.zeros_like(mask)
    seed[3, 3] = 5.0
    rec = reconstruction_by_dilation(seed, mask)
    assert rec[2:5, 2:5].min() == 1.0 and rec[6, 6] == 0.0
    assert not h_maxima(np.ones((5, 5)), 1.0).any()  # flat: no maximum
    with pytest.raises(ValueError, match='h must be > 0'):
        h_maxima(mask, 0)
    with pytest.raises(ValueError, match='one shape'):
        reconstruction_by_dilation(np.zeros((3, 3)), np.zeros((3, 4)))
