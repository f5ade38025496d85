"""Task re-weighting (Eq. 3) for known discriminator outputs."""
import math

import pytest
import torch

from nucseg.models.detectors import source_probability, task_reweight


@pytest.mark.parametrize('p,expected', [
    (0.5, 1.0),     # indistinguishable features: weight 1
    (0.8, 0.25),    # source-looking: (1 - 0.8) / 0.8
    (0.25, 2.0),    # target-looking: 3, capped at beta = 2
    (0.4, 1.5),
])
def test_paper_weight(p, expected):
    assert task_reweight(torch.tensor([p]), beta=2.0).item() == \
        pytest.approx(expected)


def test_mean_then_bounds_and_clamp():
    p = torch.tensor([0.5, 0.8])  # ratios 1 and 0.25 -> mean 0.625
    assert task_reweight(p).item() == pytest.approx(0.625)
    assert task_reweight(p, clamp=(0.5, 1.5)).item() == pytest.approx(0.625)
    assert task_reweight(torch.tensor([0.9]), clamp=(0.5, 1.5)).item() == \
        pytest.approx(0.5)
    assert task_reweight(torch.tensor([0.1]), clamp=(0.5, 1.5)).item() == \
        pytest.approx(1.5)
    assert task_reweight(torch.zeros(0)).item() == 1.0
    assert not task_reweight(torch.tensor([0.3], requires_grad=True)) \
        .requires_grad


def test_source_probability_and_authors_quirk():
    # 2-way logits: source channel 1 with probability sigmoid(2) = 0.88
    logits = torch.tensor([[0.0, 2.0]]).view(1, 2, 1, 1)
    p = source_probability(logits, source_label=1)
    assert p.item() == pytest.approx(1 / (1 + math.exp(-2)))
    # authors: both channels -> ratios (0.88/0.12 and 0.12/0.88) averaged
    both = source_probability(logits, both_channels=True)
    w = task_reweight(both, beta=None).item()
    q = 1 / (1 + math.exp(-2))
    assert w == pytest.approx(0.5 * ((1 - q) / q + q / (1 - q)), rel=1e-5)
    assert w >= 1.0  # the quirk: never below 1
    # instance level: single logits through a sigmoid
    assert source_probability(torch.tensor([0.0])).item() == 0.5
