"""Per-image stain vectors (Macenko) and the stain-prior options."""
import numpy as np
import pytest

from nucseg.utils.stain import (HE_STAIN_MATRIX, macenko_stain_matrix,
                                stain_concentrations, stain_priors)


def _mixture(q, seed=0, n=64):
    """RGB image of known H/E concentrations mixed with matrix ``q``."""
    rng = np.random.default_rng(seed)
    conc = np.zeros((n, n, 2))
    conc[..., 0] = rng.uniform(0.05, 0.9, (n, n)) * (rng.random((n, n)) < .5)
    conc[..., 1] = rng.uniform(0.05, 0.6, (n, n))
    od = conc @ q.T
    return np.clip(255 * 10**(-od), 0, 255), conc


def test_macenko_recovers_the_mixing_vectors():
    # Stains different from Ruifrok's default, as another lab's would be.
    q = np.array([[0.75, 0.20], [0.60, 0.85], [0.28, 0.49]])
    q = q / np.linalg.norm(q, axis=0)
    img, conc = _mixture(q)
    est = macenko_stain_matrix(img, alpha=0.1, beta=0.02)
    cos = (est * q).sum(0)
    assert cos.min() > 0.99, (est, q)
    # With the estimated vectors the H concentration is recovered better
    # than with the default Ruifrok vectors.
    err_est = np.abs(stain_concentrations(img, est)[..., 0] - conc[..., 0])
    err_def = np.abs(stain_concentrations(img)[..., 0] - conc[..., 0])
    assert err_est.mean() < 0.5 * err_def.mean()


def test_macenko_falls_back_without_tissue():
    blank = np.full((32, 32, 3), 250, np.uint8)
    np.testing.assert_allclose(macenko_stain_matrix(blank), HE_STAIN_MATRIX)


def test_stain_priors_options():
    q = HE_STAIN_MATRIX
    img, _ = _mixture(q, seed=1)
    pri = stain_priors(img.astype(np.uint8), stain_matrix='macenko',
                       h_sigma=1.0)
    assert pri.coarse_fg.any() and pri.fg_ref.any() and pri.bg_ref.any()
    assert not (pri.fg_ref & pri.bg_ref).any()
    with pytest.raises(ValueError, match='macenko'):
        stain_priors(img, stain_matrix='vahadane')
    with pytest.raises(ValueError, match='h_sigma'):
        stain_priors(img, h_sigma=-1)
