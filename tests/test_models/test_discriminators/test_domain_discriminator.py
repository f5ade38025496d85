import pytest
import torch

from nucseg.models.discriminators.domain_discriminator import \
    DomainDiscriminator
from nucseg.registry import MODELS


def test_shapes_and_layers():
    disc = MODELS.build(
        dict(type='DomainDiscriminator', in_channels=8, width=16,
             num_convs=2))
    assert isinstance(disc, DomainDiscriminator)
    convs = [m for m in disc.convs if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 2
    assert all(c.stride == (2, 2) and c.kernel_size == (3, 3) for c in convs)
    assert convs[0].in_channels == 8 and convs[-1].out_channels == 16
    x = torch.randn(3, 8, 16, 16)
    out = disc(x)
    assert out.shape == (3, )
    # samples are classified independently (no batch statistics)
    torch.testing.assert_close(disc(x[1:2]), out[1:2])


def test_learns_to_separate_domains():
    torch.manual_seed(0)
    disc = DomainDiscriminator(in_channels=4, width=8, num_convs=2)
    opt = torch.optim.Adam(disc.parameters(), lr=1e-2)
    x = torch.randn(8, 4, 8, 8)
    x[:4] += 1.0  # "primary" samples shifted
    y = torch.tensor([1.] * 4 + [0.] * 4)
    for _ in range(60):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(
            disc(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    acc = ((disc(x) > 0).float() == y).float().mean()
    assert acc == 1.0


def test_bad_input():
    disc = DomainDiscriminator(in_channels=4, width=8)
    with pytest.raises(ValueError, match='B x 4'):
        disc(torch.randn(2, 5, 8, 8))
    with pytest.raises(ValueError, match='num_convs'):
        DomainDiscriminator(num_convs=0)
