import pytest
import torch

from nucseg.models.layers.adapter import Adapter
from nucseg.registry import MODELS


def test_fresh_adapter_outputs_zero():
    torch.manual_seed(0)
    ada = MODELS.build(dict(type='Adapter', dim=16, bottleneck=4, scale=0.5))
    assert isinstance(ada, Adapter)
    x = torch.randn(2, 3, 5, 16)
    out = ada(x)
    assert out.shape == x.shape
    assert torch.count_nonzero(out) == 0
    # The down projection is not zero: the adapter is not dead.
    assert ada.down.weight.abs().sum() > 0


def test_adapter_formula_and_scale():
    torch.manual_seed(0)
    ada = Adapter(8, bottleneck=3, scale=0.25)
    torch.nn.init.normal_(ada.up.weight)
    torch.nn.init.normal_(ada.up.bias)
    x = torch.randn(4, 8)
    hidden = torch.relu(x @ ada.down.weight.T + ada.down.bias)
    expected = 0.25 * (hidden @ ada.up.weight.T + ada.up.bias)
    torch.testing.assert_close(ada(x), expected)
    ada.init_weights()
    assert torch.count_nonzero(ada(x)) == 0


def test_first_step_trains_up_only():
    torch.manual_seed(0)
    ada = Adapter(8, bottleneck=4)
    x = torch.randn(6, 8)
    (ada(x) * torch.randn(6, 8)).sum().backward()
    assert ada.up.weight.grad.abs().sum() > 0
    assert ada.up.bias.grad.abs().sum() > 0
    # d out / d down = up.weight^T ... = 0 while up is zero.
    assert torch.count_nonzero(ada.down.weight.grad) == 0


@pytest.mark.parametrize('kwargs', [dict(dim=0), dict(dim=8, bottleneck=0)])
def test_invalid_sizes(kwargs):
    with pytest.raises(ValueError, match='must be positive'):
        Adapter(**kwargs)
