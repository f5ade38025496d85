"""SAMDA's perceptual loss (Eq. 2-5)."""
import pytest
import torch

from nucseg.models.losses import PerceptualLoss, gram_matrix
from nucseg.registry import MODELS


def test_zero_for_identical_inputs():
    loss = PerceptualLoss()
    f = torch.randn(3, 5, 4, 6)
    out = loss(f, f.clone())
    assert set(out) == {'loss_feat', 'loss_style'}
    assert out['loss_feat'] == 0 and out['loss_style'] == 0


def test_gram_matrix_normalisation_by_hand():
    # C = 2, H = 1, W = 2: channel a = (1, 2), channel b = (3, 4)
    f = torch.tensor([[[[1., 2.]], [[3., 4.]]]])
    g = gram_matrix(f)
    chw = 2 * 1 * 2
    expected = torch.tensor([[[1 * 1 + 2 * 2, 1 * 3 + 2 * 4],
                              [3 * 1 + 4 * 2, 3 * 3 + 4 * 4]]]) / chw
    assert torch.allclose(g, expected)
    with pytest.raises(ValueError, match='BxCxHxW'):
        gram_matrix(torch.ones(2, 3))


def test_terms_by_hand_and_weights():
    fs = torch.tensor([[[[1., 2.]], [[3., 4.]]]])
    ft = torch.zeros_like(fs)
    loss = MODELS.build(dict(type='PerceptualLoss', feat_weight=2.0,
                             style_weight=0.5))
    out = loss(fs, ft)
    # Eq. 3: sum of squares / (C H W) = (1 + 4 + 9 + 16) / 4
    assert torch.isclose(out['loss_feat'], torch.tensor(2.0 * 30 / 4))
    # Eq. 5: squared Frobenius norm of G(s) - G(0) = G(s)
    g = torch.tensor([[5., 11.], [11., 25.]]) / 4
    assert torch.isclose(out['loss_style'], 0.5 * (g**2).sum())


def test_batch_average_over_pairs():
    loss = PerceptualLoss()
    a, b = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4)
    both = loss(a, b)
    one = [loss(a[i:i + 1], b[i:i + 1]) for i in range(2)]
    for key in both:
        assert torch.isclose(both[key], (one[0][key] + one[1][key]) / 2)


def test_gradient_reaches_both_inputs_and_errors():
    a = torch.randn(2, 3, 4, 4, requires_grad=True)
    b = torch.randn(2, 3, 4, 4, requires_grad=True)
    out = PerceptualLoss()(a, b)
    sum(out.values()).backward()
    assert a.grad.abs().sum() > 0 and b.grad.abs().sum() > 0
    with pytest.raises(ValueError, match='one BxCxHxW shape'):
        PerceptualLoss()(a, b[:1])
    with pytest.raises(ValueError, match='"loss_"'):
        PerceptualLoss(loss_feat_name='feat')
