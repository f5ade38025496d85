"""The two synthetic EM domains (SAMDA's CPU source and target)."""
import numpy as np
from scipy import ndimage

from nucseg.datasets.synthetic import DOMAINS, generate_sample


def _stats(domain, n=3, size=128):
    lap, area, contrast = [], [], []
    for seed in range(n):
        img, inst = generate_sample(domain, size, seed)
        assert np.array_equal(img[..., 0], img[..., 1])  # grey
        assert np.array_equal(img[..., 0], img[..., 2])
        grey = img[..., 0].astype(float)
        fg = inst > 0
        assert fg.any()
        lap.append(np.abs(ndimage.laplace(grey))[~fg].mean())
        area.append(fg.sum() / max(1, len(np.unique(inst)) - 1))
        contrast.append(grey[~fg].mean() - grey[fg].mean())
    return np.mean(lap), np.mean(area), np.mean(contrast)


def test_em_fibsem_is_a_second_em_domain():
    assert DOMAINS['em_fibsem'].modality == 'em'
    lap_tem, area_tem, c_tem = _stats('em')
    lap_fib, area_fib, c_fib = _stats('em_fibsem')
    assert c_tem > 20 and c_fib > 20  # dark mitochondria in both
    assert lap_fib < 0.7 * lap_tem  # smoother, less noisy
    assert area_fib > area_tem  # larger mitochondria
