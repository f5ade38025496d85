import pytest
import torch

from nucseg.models.layers.grl import (ConditionalGradientReversal,
                                      GradientReversal, cgrl, grl)
from nucseg.registry import MODELS


def _grad_through(fn, x, g):
    x = x.clone().requires_grad_(True)
    y = fn(x)
    assert torch.equal(y, x)  # identity forward
    (y * g).sum().backward()
    return x.grad


@pytest.fixture
def data():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(4, 3, 5, 6, generator=gen)
    g = torch.randn(4, 3, 5, 6, generator=gen)
    return x, g


@pytest.mark.parametrize('lambd', [1.0, 0.37, 0.0])
def test_grl_gradient(data, lambd):
    x, g = data
    grad = _grad_through(lambda t: grl(t, lambd), x, g)
    assert torch.equal(grad, g * (-lambd))


@pytest.mark.parametrize('lambd', [1.0, 0.37, 0.0])
def test_cgrl_gradient_exact(data, lambd):
    x, g = data
    is_primary = torch.tensor([True, False, True, False])
    grad = _grad_through(lambda t: cgrl(t, is_primary, lambd), x, g)
    assert torch.equal(grad[is_primary], torch.zeros_like(g[is_primary]))
    assert torch.equal(grad[~is_primary], g[~is_primary] * (-lambd))


def test_cgrl_all_primary_all_aux(data):
    x, g = data
    grad = _grad_through(lambda t: cgrl(t, torch.ones(4, dtype=torch.bool),
                                        0.5), x, g)
    assert torch.equal(grad, torch.zeros_like(g))
    grad = _grad_through(lambda t: cgrl(t, torch.zeros(4, dtype=torch.bool),
                                        0.5), x, g)
    assert torch.equal(grad, -0.5 * g)
    # all-auxiliary CGRL equals the plain GRL
    assert torch.equal(grad, _grad_through(lambda t: grl(t, 0.5), x, g))


def test_cgrl_primary_zero_even_for_nonfinite_grad():
    x = torch.randn(2, 3, requires_grad=True)
    g = torch.tensor([[float('inf'), float('nan'), 1.0], [2.0, 3.0, 4.0]])
    (cgrl(x, [True, False], 1.0) * g).sum().backward()
    assert torch.equal(x.grad[0], torch.zeros(3))
    assert torch.equal(x.grad[1], -g[1])


def test_cgrl_other_shapes_and_int_flags():
    gen = torch.Generator().manual_seed(1)
    for shape in [(3, ), (3, 7), (3, 2, 4)]:
        x = torch.randn(*shape, generator=gen)
        g = torch.randn(*shape, generator=gen)
        grad = _grad_through(
            lambda t: cgrl(t, torch.tensor([0, 1, 0]), 2.0), x, g)
        assert torch.equal(grad[1], torch.zeros_like(g[1]))
        assert torch.equal(grad[0], -2.0 * g[0])
        assert torch.equal(grad[2], -2.0 * g[2])


def test_cgrl_reverses_chain_to_parameters():
    # encoder w -> CGRL -> "discriminator" loss: the encoder parameter gets
    # only the reversed gradient of the auxiliary samples.
    torch.manual_seed(0)
    w = torch.randn(3, requires_grad=True)
    inp = torch.randn(4, 3)
    is_primary = torch.tensor([True, True, False, False])
    loss = (cgrl(inp * w, is_primary, 0.5)**2).sum()
    loss.backward()
    expected = -0.5 * (2 * (inp * w.detach()) * inp)[2:].sum(0)
    torch.testing.assert_close(w.grad, expected)


def test_cgrl_bad_flags():
    x = torch.randn(4, 2)
    with pytest.raises(ValueError, match='is_primary'):
        cgrl(x, torch.ones(3, dtype=torch.bool))
    with pytest.raises(ValueError, match='0/1'):
        cgrl(x, torch.tensor([0, 2, 1, 0]))
    with pytest.raises(TypeError, match='is_primary'):
        cgrl(x, torch.ones(4))
    with pytest.raises(ValueError, match='finite'):
        grl(x, float('nan'))


def test_modules_lambd_changeable(data):
    x, g = data
    rev = MODELS.build(dict(type='GradientReversal', lambd=1.0))
    assert isinstance(rev, GradientReversal)
    rev.lambd = 0.25  # e.g. set by a hook
    assert torch.equal(_grad_through(rev, x, g), -0.25 * g)
    crev = MODELS.build(dict(type='ConditionalGradientReversal', lambd=2.0))
    assert isinstance(crev, ConditionalGradientReversal)
    crev.lambd = 0.5
    flags = torch.tensor([False, True, False, True])
    grad = _grad_through(lambda t: crev(t, flags), x, g)
    assert torch.equal(grad[flags], torch.zeros_like(g[flags]))
    assert torch.equal(grad[~flags], -0.5 * g[~flags])
    assert 'lambd=0.5' in repr(crev)
