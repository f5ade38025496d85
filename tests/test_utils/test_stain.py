import numpy as np
from skimage.color import rgb_from_hed

from nucseg.utils.stain import hed_to_rgb, od_to_rgb, rgb_to_hed, rgb_to_od


def test_od_round_trip():
    img = np.random.default_rng(0).integers(1, 256, (16, 16, 3), np.uint8)
    np.testing.assert_array_equal(od_to_rgb(rgb_to_od(img)), img)
    assert rgb_to_od(np.full((1, 1, 3), 255, np.uint8)).max() == 0


def test_deconvolution_recovers_known_mixture():
    """Beer-Lambert mixture of known H and E amounts deconvolves back."""
    rng = np.random.default_rng(1)
    conc = np.zeros((32, 32, 3), np.float32)
    conc[..., 0] = rng.uniform(0.0, 0.8, (32, 32))  # haematoxylin
    conc[..., 1] = rng.uniform(0.0, 0.5, (32, 32))  # eosin
    od = conc @ rgb_from_hed.astype(np.float32)
    img = od_to_rgb(od)
    est = rgb_to_hed(img)
    # 8-bit quantisation limits the precision.
    np.testing.assert_allclose(est[..., :2], conc[..., :2], atol=0.02)
    assert np.abs(est[..., 2]).max() < 0.03
    np.testing.assert_array_equal(hed_to_rgb(est), img)
