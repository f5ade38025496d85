import math

import pytest
import torch

from nucseg.models.losses.cgrl_loss import (CGRLLoss,
                                            inverse_frequency_weights,
                                            main_aux_weights)
from nucseg.registry import MODELS


def _sig(v):
    return 1.0 / (1.0 + math.exp(-v))


def _eq3(logits, ys, ws_main, ws_aux):
    """Eq. 3 written out with per-sample weights."""
    total = 0.0
    for z, y, wm, wa in zip(logits, ys, ws_main, ws_aux):
        d = _sig(z)
        total += wm * y * math.log(d) + wa * (1 - y) * math.log(1 - d)
    return -total / len(logits)


LOGITS = [2.0, -1.0, 0.5, 0.0]
IS_PRIMARY = [True, False, False, True]


def test_eq3_explicit_weights():
    loss = MODELS.build(dict(type='CGRLLoss', w_main=3.0, w_aux=0.5))
    assert loss.loss_name == 'loss_cgrl'
    out = loss(torch.tensor(LOGITS), torch.tensor(IS_PRIMARY))
    ys = [int(p) for p in IS_PRIMARY]
    expected = _eq3(LOGITS, ys, [3.0] * 4, [0.5] * 4)
    assert out.item() == pytest.approx(expected, rel=1e-6)
    # (B, 1) logits, 0/1 targets, loss_weight, sum / none reductions
    loss2 = CGRLLoss(w_main=3.0, w_aux=0.5, loss_weight=2.0)
    out2 = loss2(torch.tensor(LOGITS)[:, None], torch.tensor(ys))
    assert out2.item() == pytest.approx(2 * expected, rel=1e-6)
    per = loss(torch.tensor(LOGITS), torch.tensor(ys),
               reduction_override='none')
    assert per.shape == (4, )
    assert per.sum().item() == pytest.approx(4 * expected, rel=1e-6)


def test_plain_bce_without_weights():
    loss = CGRLLoss()
    z = torch.tensor(LOGITS)
    y = torch.tensor(IS_PRIMARY)
    torch.testing.assert_close(
        loss(z, y),
        torch.nn.functional.binary_cross_entropy_with_logits(z, y.float()))


def test_weight_formula():
    w_main, w_aux = CGRLLoss.domain_weights(40, 160)
    assert w_main == pytest.approx(1.6)
    assert w_aux == pytest.approx(0.4)
    assert w_main / w_aux == pytest.approx(160 / 40)  # inverse to counts
    w_main, w_aux = CGRLLoss.domain_weights(40, [160, 80])
    assert w_main == pytest.approx(1 / 40 / ((1 / 40 + 1 / 160 + 1 / 80) /
                                             3))
    assert w_aux == pytest.approx([w_main / 4, w_main / 2])
    assert (w_main + sum(w_aux)) / 3 == pytest.approx(1.0)
    assert inverse_frequency_weights([7]) == [1.0]
    assert inverse_frequency_weights([5, 5, 5]) == pytest.approx([1] * 3)
    with pytest.raises(ValueError, match='>= 1'):
        inverse_frequency_weights([0, 3])


def test_eq3_two_weights_from_known_counts():
    """Table 1 M + T + C + CP (30 / 50 / 30 / 64 training images): w_main
    is inversely proportional to the 30 primary images and w_aux to the
    144 auxiliary images together, so both sides carry the same loss mass
    over an epoch (per-data-set weights would give primary : auxiliary =
    1 : 3)."""
    sizes = [30, 50, 30, 64]
    w_main, w_aux = main_aux_weights(sizes, [0])
    assert w_main == pytest.approx(2 * 144 / 174)
    assert w_aux == pytest.approx(2 * 30 / 174)
    assert w_main / w_aux == pytest.approx(144 / 30)
    assert 30 * w_main == pytest.approx(144 * w_aux)
    per = inverse_frequency_weights(sizes)
    assert 30 * per[0] == pytest.approx(sum(
        n * w for n, w in zip(sizes[1:], per[1:])) / 3)
    # The loss built from the counts (the default weighting) is Eq. 3
    # with exactly these two weights, whatever the auxiliary set.
    loss = CGRLLoss(domain_sizes=sizes)
    assert loss.weighting == 'main_aux'
    assert (loss.w_main, loss.w_aux) == (w_main, w_aux)
    ys = [int(p) for p in IS_PRIMARY]
    out = loss(torch.tensor(LOGITS), torch.tensor(IS_PRIMARY),
               torch.tensor([0, 1, 3, 0]))
    assert out.item() == pytest.approx(
        _eq3(LOGITS, ys, [w_main] * 4, [w_aux] * 4), rel=1e-6)
    # TNBC primary (domain id 1 here).
    assert main_aux_weights(sizes, [1]) == pytest.approx(
        (2 * 124 / 174, 2 * 50 / 174))
    with pytest.raises(ValueError, match='no auxiliary'):
        main_aux_weights([30], [0])
    with pytest.raises(ValueError, match='primary_ids'):
        main_aux_weights([30, 50], [2])
    with pytest.raises(ValueError, match='weighting'):
        CGRLLoss(weighting='per_image')


def test_domain_sizes_hook_sets_two_weights(tmp_path):
    """The hook reads the counts and the primary domain from the training
    set (MultiDomainDataset) and leaves configured weights alone."""
    from types import SimpleNamespace

    from torch import nn

    from nucseg.engine.hooks import DomainSizesHook

    dataset = SimpleNamespace(domain_sizes=[30, 50, 30, 64],
                              primary_ids=[2],
                              domain_names=['tnbc', 'monuseg', 'cryo',
                                            'cpm17'])
    model = nn.Module()
    model.loss_align = CGRLLoss()
    runner = SimpleNamespace(model=model,
                             train_dataloader=SimpleNamespace(
                                 dataset=dataset))
    DomainSizesHook().before_train(runner)
    assert (model.loss_align.w_main, model.loss_align.w_aux) == (
        pytest.approx(2 * 144 / 174), pytest.approx(2 * 30 / 174))
    model.loss_align = CGRLLoss(w_main=3.0, w_aux=0.5)
    DomainSizesHook().before_train(runner)
    assert (model.loss_align.w_main, model.loss_align.w_aux) == (3.0, 0.5)


def test_domain_sizes_per_dataset_weights():
    sizes = [40, 160, 80]
    loss = CGRLLoss(domain_sizes=sizes, weighting='per_domain')
    domain_id = torch.tensor([0, 1, 2, 0])
    w = inverse_frequency_weights(sizes)
    out = loss(torch.tensor(LOGITS), torch.tensor(IS_PRIMARY), domain_id)
    ws = [w[d] for d in domain_id.tolist()]
    ys = [int(p) for p in IS_PRIMARY]
    expected = _eq3(LOGITS, ys, ws, ws)
    assert out.item() == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ValueError, match='domain_id is required'):
        loss(torch.tensor(LOGITS), torch.tensor(IS_PRIMARY))
    with pytest.raises(ValueError, match=r'domain_id values'):
        loss(torch.tensor(LOGITS), torch.tensor(IS_PRIMARY),
             torch.tensor([0, 3, 1, 0]))


def test_gradient_wrt_logits():
    z = torch.tensor(LOGITS, requires_grad=True)
    CGRLLoss(w_main=3.0, w_aux=0.5)(z, torch.tensor(IS_PRIMARY)).backward()
    # d/dz of -w [y log s + (1-y) log(1-s)] / N = w (s - y) / N
    for i, (v, p) in enumerate(zip(LOGITS, IS_PRIMARY)):
        w = 3.0 if p else 0.5
        assert z.grad[i].item() == pytest.approx(
            w * (_sig(v) - float(p)) / 4, rel=1e-5)


def test_bad_config_and_input():
    with pytest.raises(ValueError, match='both'):
        CGRLLoss(w_main=1.0)
    with pytest.raises(ValueError, match='not both'):
        CGRLLoss(w_main=1.0, w_aux=1.0, domain_sizes=[1, 2])
    with pytest.raises(ValueError, match='reduction'):
        CGRLLoss(reduction='max')
    loss = CGRLLoss()
    with pytest.raises(ValueError, match='target'):
        loss(torch.zeros(4), torch.zeros(3))
    with pytest.raises(ValueError, match='0/1'):
        loss(torch.zeros(2), torch.tensor([0, 2]))
