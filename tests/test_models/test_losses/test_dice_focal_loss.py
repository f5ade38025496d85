import math

import pytest
import torch
import torch.nn.functional as F

from nucseg.models.losses.dice_focal_loss import DiceFocalLoss
from nucseg.registry import MODELS

LOGITS = [[1.0, -2.0], [0.5, 3.0]]
TARGET = [[1, 0], [0, 1]]


def _sig(v):
    return 1.0 / (1.0 + math.exp(-v))


def _hand(logits, target, mode='batch', alpha=0.8, gamma=2.0):
    p = [_sig(v) for v in logits]
    inter = sum(pi * ti for pi, ti in zip(p, target))
    dice = 1 - (2 * inter + 1) / (sum(p) + sum(target) + 1)
    bces = [-(t * math.log(pi) + (1 - t) * math.log(1 - pi))
            for pi, t in zip(p, target)]
    if mode == 'batch':
        bce = sum(bces) / len(bces)
        focal = alpha * (1 - math.exp(-bce))**gamma * bce
    else:
        terms = []
        for pi, t, b in zip(p, target, bces):
            pt = pi if t else 1 - pi
            at = alpha if t else 1 - alpha
            terms.append(at * (1 - pt)**gamma * b)
        focal = sum(terms) / len(terms)
    return 0.8 * dice + 0.2 * focal


def _flat(x):
    return [v for row in x for v in row]


@pytest.mark.parametrize('mode', ['batch', 'pixel'])
def test_hand_computation(mode):
    loss = MODELS.build(dict(type='DiceFocalLoss', focal_mode=mode))
    assert loss.loss_name == 'loss_dice_focal'
    pred = torch.tensor(LOGITS)[None, None]
    out = loss(pred, torch.tensor(TARGET)[None])
    expected = _hand(_flat(LOGITS), _flat(TARGET), mode)
    assert out.item() == pytest.approx(expected, rel=1e-6)
    # B x 1 x H x W target gives the same
    out2 = loss(pred, torch.tensor(TARGET)[None, None])
    assert out2.item() == pytest.approx(expected, rel=1e-6)


def test_matches_unsam_reference():
    """UN-SAM's BinaryMaskLoss(0.8) on sigmoid probabilities."""
    gen = torch.Generator().manual_seed(0)
    pred = torch.randn(2, 1, 16, 16, generator=gen) * 2
    target = (torch.rand(2, 1, 16, 16, generator=gen) > 0.6).float()
    p = pred.sigmoid()
    inter = (p * target).sum()
    dice = 1 - (2 * inter + 1) / (p.sum() + target.sum() + 1)
    bce = F.binary_cross_entropy(p, target)
    focal = 0.8 * (1 - torch.exp(-bce))**2 * bce
    ref = 0.8 * dice + 0.2 * focal
    out = DiceFocalLoss()(pred, target.long())
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)


def test_ignore_index_equals_subset():
    pred = torch.tensor([[[[1.0, -2.0, 4.0], [0.5, 3.0, -4.0]]]])
    target = torch.tensor([[[1, 0, 255], [0, 1, 255]]])
    loss = DiceFocalLoss()
    expected = _hand(_flat(LOGITS), _flat(TARGET))
    assert loss(pred, target).item() == pytest.approx(expected, rel=1e-6)
    # ignored pixels get no gradient
    pred.requires_grad_(True)
    loss(pred, target).backward()
    assert torch.all(pred.grad[..., 2] == 0)
    assert torch.all(pred.grad[..., :2] != 0)
    # mmseg decode heads pass ignore_index explicitly
    with pytest.raises(ValueError, match='only 0, 1'):
        loss(pred, target, ignore_index=254)
    # everything ignored: zero loss, no NaN
    out = loss(pred, torch.full_like(target, 255))
    assert out.item() == 0.0


def test_perfect_prediction_and_weights():
    target = torch.tensor([[[1, 0], [0, 1]]])
    pred = (target[:, None].float() * 2 - 1) * 30
    assert DiceFocalLoss()(pred, target).item() == pytest.approx(
        0.0, abs=1e-6)
    only_dice = DiceFocalLoss(dice_weight=1.0, focal_weight=0.0,
                              loss_weight=3.0)
    p = torch.tensor(LOGITS)[None, None]
    pr = [_sig(v) for v in _flat(LOGITS)]
    t = _flat(TARGET)
    dice = 1 - (2 * sum(a * b for a, b in zip(pr, t)) + 1) / (
        sum(pr) + sum(t) + 1)
    assert only_dice(p, torch.tensor(TARGET)[None]).item() == pytest.approx(
        3 * dice, rel=1e-6)


def test_bad_input():
    loss = DiceFocalLoss()
    with pytest.raises(ValueError, match='B x 1 x H x W'):
        loss(torch.zeros(1, 2, 4, 4), torch.zeros(1, 4, 4))
    with pytest.raises(ValueError, match='target must be'):
        loss(torch.zeros(1, 1, 4, 4), torch.zeros(1, 3, 4))
    with pytest.raises(ValueError, match='only 0, 1'):
        loss(torch.zeros(1, 1, 2, 2), torch.tensor([[[0, 2], [1, 0]]]))
    with pytest.raises(ValueError, match='weight'):
        loss(torch.zeros(1, 1, 2, 2), torch.zeros(1, 2, 2),
             weight=torch.ones(1))
    with pytest.raises(ValueError, match='focal_mode'):
        DiceFocalLoss(focal_mode='sample')
