import numpy as np
import pytest

from nucseg.utils.stain import (HE_STAIN_MATRIX, StainPriors, od_to_rgb,
                                stain_concentrations, stain_priors)


def _render(conc: np.ndarray, quantise: bool = True) -> np.ndarray:
    """Beer-Lambert rendering of ``HxWx2`` H/E concentrations."""
    od = conc @ HE_STAIN_MATRIX.T
    if quantise:
        return od_to_rgb(od)
    return 255.0 * np.power(10.0, -od)


def _mixture(seed: int = 0, size: int = 32) -> np.ndarray:
    rng = np.random.default_rng(seed)
    conc = np.empty((size, size, 2))
    conc[..., 0] = rng.uniform(0.0, 0.9, (size, size))
    conc[..., 1] = rng.uniform(0.0, 0.6, (size, size))
    return conc


def test_concentrations_recover_known_mixture_exactly():
    conc = _mixture()
    est = stain_concentrations(_render(conc, quantise=False))
    assert est.shape == (32, 32, 2) and est.dtype == np.float32
    np.testing.assert_allclose(est, conc, atol=1e-4)


def test_concentrations_recover_quantised_mixture():
    conc = _mixture(1)
    est = stain_concentrations(_render(conc))
    # 8-bit rounding of dark pixels limits the precision.
    np.testing.assert_allclose(est, conc, atol=0.02)
    assert np.abs(est - conc).mean() < 0.003


def test_custom_stain_matrix_layouts_agree():
    rng = np.random.default_rng(2)
    q = np.abs(rng.normal(size=(3, 2))) + 0.1
    conc = _mixture(3, 8)
    q_unit = q / np.linalg.norm(q, axis=0)
    img = 255.0 * np.power(10.0, -(conc @ q_unit.T))
    a = stain_concentrations(img, stain_matrix=q)
    b = stain_concentrations(img, stain_matrix=q.T)
    np.testing.assert_allclose(a, b)
    np.testing.assert_allclose(a, conc, atol=1e-4)
    with pytest.raises(ValueError, match='stain_matrix'):
        stain_concentrations(img, stain_matrix=np.ones((3, 3)))
    with pytest.raises(ValueError, match='parallel'):
        stain_concentrations(img, stain_matrix=np.ones((3, 2)))
    with pytest.raises(ValueError, match='HxWx3'):
        stain_concentrations(img[..., 0])


def _disk_image(seed: int = 0):
    """Pink noisy background with dark haematoxylin disks."""
    rng = np.random.default_rng(seed)
    size = 96
    yy, xx = np.mgrid[:size, :size]
    disks = np.zeros((size, size), bool)
    for cy, cx in [(20, 20), (20, 70), (60, 40), (75, 80)]:
        disks |= (yy - cy)**2 + (xx - cx)**2 <= 9**2
    conc = np.empty((size, size, 2))
    conc[..., 0] = np.where(disks, rng.uniform(0.6, 1.0, disks.shape),
                            np.abs(rng.normal(0.0, 0.06, disks.shape)))
    conc[..., 1] = rng.uniform(0.1, 0.3, disks.shape)
    return _render(conc), disks, conc[..., 0]


def test_stain_priors_masks_on_synthetic_image():
    img, disks, _ = _disk_image()
    pri = stain_priors(img, top_t=0.6)
    assert isinstance(pri, StainPriors)
    # skimage places Otsu's threshold at the centre of the top background
    # histogram bin, so the brightest background pixel(s) may flip.
    assert pri.coarse_fg[disks].all()
    assert (pri.coarse_fg & ~disks).sum() <= 3
    assert pri.threshold < 0.6
    assert pri.coarse_fraction == pytest.approx(pri.coarse_fg.mean())
    disks = pri.coarse_fg
    # References lie inside their coarse region.
    assert not (pri.fg_ref & ~pri.coarse_fg).any()
    assert not (pri.bg_ref & pri.coarse_fg).any()
    # floor(0.6 n) pixels each (quantised values may tie at the cutoff).
    n_fg, n_bg = disks.sum(), (~disks).sum()
    assert int(0.6 * n_fg) <= pri.fg_ref.sum() <= int(0.6 * n_fg) + 25
    assert int(0.6 * n_bg) <= pri.bg_ref.sum() <= int(0.6 * n_bg) + 60
    # The kept pixels are the most (least) haematoxylin-stained ones.
    h = pri.h
    assert h[pri.fg_ref].min() >= h[pri.coarse_fg & ~pri.fg_ref].max()
    assert h[pri.bg_ref].max() <= h[~pri.coarse_fg & ~pri.bg_ref].min()
    assert pri.fg_cutoff == pytest.approx(h[pri.fg_ref].min())
    assert pri.bg_cutoff == pytest.approx(h[pri.bg_ref].max())


def test_stain_priors_top_one_and_smoothing():
    img, disks, _ = _disk_image(1)
    pri = stain_priors(img, top_t=1.0)
    np.testing.assert_array_equal(pri.fg_ref, pri.coarse_fg)
    np.testing.assert_array_equal(pri.bg_ref, ~pri.coarse_fg)
    smooth = stain_priors(img, top_t=0.6, smooth_sigma=1.0)
    # Blurring spreads H across the disk rims but keeps the disks.
    assert (smooth.coarse_fg & disks).sum() / disks.sum() > 0.85
    assert (smooth.fg_ref & ~disks).sum() == 0


def test_stain_priors_constant_image_and_bad_args():
    pri = stain_priors(np.full((8, 8, 3), 200, np.uint8))
    assert not pri.coarse_fg.any() and not pri.fg_ref.any()
    assert pri.bg_ref.all()
    with pytest.raises(ValueError, match='top_t'):
        stain_priors(np.zeros((4, 4, 3), np.uint8), top_t=0.0)
    with pytest.raises(ValueError, match='smooth_sigma'):
        stain_priors(np.zeros((4, 4, 3), np.uint8), smooth_sigma=-1)
