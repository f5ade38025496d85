import numpy as np
import pytest
import torch

from nucseg.models.layers.dense_crf import DenseCRF, dense_crf
from nucseg.registry import TASK_UTILS


def _two_regions(seed: int = 0, size: int = 48, salt: float = 0.08):
    """Image with a dark left and a bright right half; noisy unary."""
    rng = np.random.default_rng(seed)
    img = np.full((size, size, 3), 60, np.uint8)
    img[:, size // 2:] = 200
    truth = np.zeros((size, size), np.int64)
    truth[:, size // 2:] = 1
    p1 = np.where(truth == 1, 0.7, 0.3)
    flip = rng.random((size, size)) < salt
    p1 = np.where(flip, 1.0 - np.where(truth == 1, 0.9, 0.1), p1)
    probs = np.stack([1.0 - p1, p1]).astype(np.float32)
    return img, probs, truth, flip


def test_output_is_per_pixel_distribution():
    img, probs, _, _ = _two_regions()
    q = dense_crf(img, probs)
    assert q.shape == probs.shape and q.dtype == np.float32
    assert (q >= 0).all()
    np.testing.assert_allclose(q.sum(0), 1.0, atol=1e-4)


def test_crf_removes_salt_noise():
    img, probs, truth, flip = _two_regions()
    unary_err = (probs.argmax(0) != truth).sum()
    assert unary_err == flip.sum() > 100
    q = dense_crf(img, probs)
    assert (q.argmax(0) != truth).sum() <= unary_err // 20


def test_zero_iterations_return_normalised_unary():
    img, probs, _, _ = _two_regions(1)
    q = dense_crf(img, probs, iters=0)
    np.testing.assert_allclose(q, probs, atol=1e-5)
    # Clipping: a zero probability becomes ~clip after renormalisation.
    probs[:, 0, 0] = (1.0, 0.0)
    q = dense_crf(img, probs, iters=0, clip=1e-3)
    assert q[1, 0, 0] == pytest.approx(1e-3, rel=1e-2)


def test_bilateral_kernel_follows_image_edges():
    """The appearance kernel pulls a mislabelled band to its colour."""
    img, probs, truth, _ = _two_regions(2, salt=0.0)
    # A band right of the colour edge leans to the wrong class.
    probs[:, :, 24:28] = np.array([0.55, 0.45])[:, None, None]
    assert (probs.argmax(0) != truth).sum() == 48 * 4
    q = dense_crf(img, probs, gaussian_compat=0, bilateral_sxy=20,
                  bilateral_srgb=10, bilateral_compat=5)
    np.testing.assert_array_equal(q.argmax(0), truth)


def test_class_wrapper_registry_and_tensors():
    img, probs, _, _ = _two_regions(3)
    crf = TASK_UTILS.build(dict(type='DenseCRF', iters=5))
    assert isinstance(crf, DenseCRF) and 'iters=5' in repr(crf)
    expected = dense_crf(img, probs, iters=5)
    np.testing.assert_allclose(
        crf(torch.from_numpy(img), torch.from_numpy(probs)), expected)


def test_bound_crf_reuses_image_terms():
    img, probs_a, _, _ = _two_regions(5)
    _, probs_b, _, _ = _two_regions(6)
    crf = DenseCRF(iters=4)
    bound = crf.bind(img, num_classes=2)
    for probs in (probs_a, probs_b, probs_a):
        np.testing.assert_array_equal(bound(probs), crf(img, probs))
    with pytest.raises(ValueError, match='bound with 2'):
        bound(np.full((3, 48, 48), 1 / 3, np.float32))
    with pytest.raises(ValueError, match='size'):
        bound(probs_a[:, :10])
    with pytest.raises(ValueError, match='iters'):
        DenseCRF(iters=1.5)


def test_normalize_scores():
    img, probs, _, _ = _two_regions(4)
    scores = probs * 7.0
    scores[:, 0, 0] = 0.0
    with pytest.raises(ValueError, match='sum to 1'):
        dense_crf(img, scores, iters=0)
    q = dense_crf(img, scores, iters=0, normalize=True)
    np.testing.assert_allclose(q[:, 1:], probs[:, 1:], atol=1e-5)
    np.testing.assert_allclose(q[:, 0, 0], 0.5)


@pytest.mark.parametrize('kwargs, err, match', [
    (dict(probs=np.full((2, 8, 9), 0.5, np.float32)), ValueError, 'size'),
    (dict(probs=np.ones((1, 8, 8), np.float32)), ValueError, '2 classes'),
    (dict(probs=np.full((2, 8, 8), np.nan, np.float32)), ValueError, 'NaN'),
    (dict(probs=np.stack([np.full((8, 8), -.5), np.full((8, 8), 1.5)])),
     ValueError, 'non-negative'),
    (dict(image=np.zeros((8, 8, 3), np.float32)), TypeError, 'uint8'),
    (dict(image=np.zeros((8, 8), np.uint8)), ValueError, 'HxWx3'),
    (dict(iters=-1), ValueError, 'iters'),
    (dict(bilateral_srgb=0), ValueError, 'bilateral_srgb'),
])
def test_invalid_inputs(kwargs, err, match):
    args = dict(image=np.zeros((8, 8, 3), np.uint8),
                probs=np.full((2, 8, 8), 0.5, np.float32))
    args.update(kwargs)
    with pytest.raises(err, match=match):
        dense_crf(**args)


def test_downscaled_crf_is_cheap_and_close():
    """scale=0.5: same kernels in image pixels, marginals at full size,
    close to the full-resolution result on a smooth two-region image."""
    rng = np.random.default_rng(0)
    img = np.full((64, 80, 3), 60, np.uint8)
    img[:, 40:] = 200
    fg = np.zeros((64, 80), np.float32)
    fg[:, 40:] = 0.7
    fg[:, :40] = 0.3
    fg = np.clip(fg + rng.normal(0, 0.15, fg.shape), 0.01, 0.99)
    probs = np.stack([1 - fg, fg]).astype(np.float32)
    full = DenseCRF()(img, probs)
    half = DenseCRF(scale=0.5)(img, probs)
    assert half.shape == full.shape
    np.testing.assert_allclose(half.sum(0), 1, atol=1e-5)
    agree = (half.argmax(0) == full.argmax(0)).mean()
    assert agree > 0.95
    bound = DenseCRF(scale=0.5).bind(img, 2)
    assert bound._grid == (32, 40)  # really ran on the coarse grid
    np.testing.assert_allclose(bound(probs), half, atol=1e-6)
    with pytest.raises(ValueError, match='scale'):
        DenseCRF(scale=0)
