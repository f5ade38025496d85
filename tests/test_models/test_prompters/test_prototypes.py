import pytest
import torch
import torch.nn.functional as F

from nucseg.models.prompters.prototypes import cosine_cost, kmeans_prototypes


def _clusters(n_per=60, dim=16, k=3, noise=0.05, seed=0):
    """Points around k random unit directions, plus their labels."""
    g = torch.Generator().manual_seed(seed)
    centres = F.normalize(torch.randn(k, dim, generator=g), dim=1)
    labels = torch.arange(k).repeat_interleave(n_per)
    scale = 0.5 + torch.rand(k * n_per, 1, generator=g)  # norms vary
    x = (centres[labels] + noise * torch.randn(k * n_per, dim, generator=g))
    return x * scale, labels, centres


def _match(protos, centres):
    """Best cosine of each true centre with a prototype, and the argmax."""
    sim = F.normalize(protos, dim=1) @ centres.T
    return sim.max(dim=0)


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_recovers_separated_clusters(seed):
    x, labels, centres = _clusters(seed=seed)
    mask = torch.ones(len(x), dtype=torch.bool)
    protos = kmeans_prototypes(x, mask, k=3, seed=seed)
    assert protos.shape == (3, 16)
    torch.testing.assert_close(protos.norm(dim=1), torch.ones(3))
    best, which = _match(protos, centres)
    assert (best > 0.99).all()
    assert len(set(which.tolist())) == 3  # one prototype per cluster


def test_mask_restricts_the_features():
    x, labels, centres = _clusters(k=4, seed=3)
    # Only clusters 0 and 2 are selected: both prototypes must sit on them.
    mask = (labels == 0) | (labels == 2)
    protos = kmeans_prototypes(x, mask, k=2, seed=0)
    sim = protos @ centres.T
    assert (sim[:, [0, 2]].max(dim=1).values > 0.99).all()
    assert (sim[:, [1, 3]].max() < 0.9)
    assert set(sim.argmax(dim=1).tolist()) == {0, 2}


def test_deterministic_under_seed():
    g = torch.Generator().manual_seed(5)
    x = torch.randn(300, 8, generator=g)  # no structure: init matters
    mask = torch.rand(300, generator=g) > 0.3
    a = kmeans_prototypes(x, mask, k=3, seed=7)
    b = kmeans_prototypes(x, mask, k=3, seed=7)
    assert torch.equal(a, b)
    c = kmeans_prototypes(x, mask, k=3, seed=8)
    assert not torch.allclose(a, c)


def test_kmeans_objective_beats_random_centres():
    x, _, _ = _clusters(noise=0.3, seed=4)
    mask = torch.ones(len(x), dtype=torch.bool)
    protos = kmeans_prototypes(x, mask, k=3, seed=0)
    xn = F.normalize(x, dim=1)
    ours = (xn @ protos.T).max(dim=1).values.sum()
    # Lloyd steps never decrease the objective from its seeds.
    seeds = kmeans_prototypes(x, mask, k=3, iters=0, seed=0)
    assert ours >= (xn @ seeds.T).max(dim=1).values.sum() - 1e-4


def test_fewer_features_than_k_repeats_them():
    x = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 3.0]])
    mask = torch.tensor([True, True, False])
    with pytest.warns(UserWarning, match='repeating'):
        protos = kmeans_prototypes(x, mask, k=5)
    expected = torch.tensor([[1.0, 0.0], [0.0, 1.0]])[[0, 1, 0, 1, 0]]
    torch.testing.assert_close(protos, expected)


def test_identical_features_give_finite_prototypes():
    x = torch.ones(10, 4)
    protos = kmeans_prototypes(x, torch.ones(10, dtype=torch.bool), k=3)
    torch.testing.assert_close(protos, torch.full((3, 4), 0.5))


def test_empty_mask_names_the_mask():
    x = torch.randn(10, 4)
    with pytest.raises(ValueError, match='bg_ref selects no features'):
        kmeans_prototypes(
            x, torch.zeros(10, dtype=torch.bool), mask_name='bg_ref')


def test_bad_inputs():
    x = torch.randn(10, 4)
    with pytest.raises(ValueError, match='fg_ref must have shape'):
        kmeans_prototypes(x, torch.ones(9, dtype=torch.bool),
                          mask_name='fg_ref')
    with pytest.raises(ValueError, match='boolean'):
        kmeans_prototypes(x, torch.ones(10))
    with pytest.raises(ValueError, match='k must'):
        kmeans_prototypes(x, torch.ones(10, dtype=torch.bool), k=0)
    with pytest.raises(ValueError, match='NaN or inf'):
        kmeans_prototypes(x / 0, torch.ones(10, dtype=torch.bool))
    with pytest.raises(ValueError, match=r'\(N, D\)'):
        kmeans_prototypes(x[0], torch.ones(4, dtype=torch.bool))


def test_cosine_cost_eq3():
    f = torch.tensor([[1.0, 0.0], [0.0, 3.0], [1.0, 1.0], [0.0, 0.0]])
    p = torch.tensor([[2.0, 0.0], [-1.0, 0.0]])
    s = 2**-0.5
    expected = torch.tensor([[0.0, 2.0], [1.0, 1.0], [1 - s, 1 + s],
                             [1.0, 1.0]])
    torch.testing.assert_close(cosine_cost(f, p), expected)


def test_cosine_cost_checks_dims():
    with pytest.raises(ValueError, match='D=3'):
        cosine_cost(torch.randn(4, 2), torch.randn(2, 3))
