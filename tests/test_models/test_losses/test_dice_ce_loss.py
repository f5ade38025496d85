"""nnU-Net's Dice + CE loss with deep-supervision weights."""
import pytest
import torch
import torch.nn.functional as F

from nucseg.models.losses import DiceCELoss, deep_supervision_weights


def test_deep_supervision_weights_as_nnunet():
    w = deep_supervision_weights(4)
    assert w[-1] == 0 and abs(sum(w) - 1) < 1e-9
    assert w[0] == pytest.approx(1 / 1.75) and w[1] == pytest.approx(
        0.5 / 1.75)
    assert deep_supervision_weights(1) == [1.0]


def test_terms_against_references():
    torch.manual_seed(0)
    pred = torch.randn(2, 2, 8, 8)
    target = torch.randint(0, 2, (2, 8, 8))
    loss = DiceCELoss(smooth=0.0)
    terms = loss(pred, target, return_terms=True)
    assert torch.isclose(terms['loss_ce'], F.cross_entropy(pred, target))
    p = pred.softmax(1)[:, 1]
    t = target.float()
    dice = 2 * (p * t).sum() / (p.sum() + t.sum())  # batch Dice, fg only
    assert torch.isclose(terms['loss_dice'], 1 - dice)
    assert torch.isclose(loss(pred, target),
                         terms['loss_ce'] + terms['loss_dice'])


def test_perfect_prediction_and_ignore():
    target = torch.zeros(1, 8, 8, dtype=torch.long)
    target[0, 2:5, 2:5] = 1
    pred = F.one_hot(target, 2).permute(0, 3, 1, 2).float() * 50
    terms = DiceCELoss()(pred, target, return_terms=True)
    assert terms['loss_dice'] < 1e-6 and terms['loss_ce'] < 1e-6
    wrong = target.clone()
    wrong[0, 0, 0] = 255  # ignored pixel
    terms2 = DiceCELoss()(pred, wrong, return_terms=True)
    assert terms2['loss_ce'] < 1e-6
    with pytest.raises(ValueError, match='classes outside'):
        DiceCELoss()(pred, target * 3)
    with pytest.raises(ValueError, match='C >= 2'):
        DiceCELoss()(pred[:, :1], target)


def test_deep_supervision_resizes_the_target():
    torch.manual_seed(0)
    target = torch.randint(0, 2, (2, 16, 16))
    preds = [torch.randn(2, 2, 16, 16, requires_grad=True),
             torch.randn(2, 2, 8, 8, requires_grad=True),
             torch.randn(2, 2, 4, 4, requires_grad=True)]
    loss = DiceCELoss()
    total = loss(preds, target)
    w = deep_supervision_weights(3)
    t8 = target[:, ::2, ::2]
    manual = w[0] * loss(preds[0], target) + w[1] * loss(preds[1], t8)
    assert torch.isclose(total, manual, atol=1e-6)
    total.backward()
    assert preds[2].grad is not None and preds[2].grad.abs().sum() == 0
