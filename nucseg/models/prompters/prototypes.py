"""Feature prototypes and the feature-prototype cost of SPROUT (Sec. 3.1).

Each self-reference region (foreground / background) is condensed into
``K`` prototypes by K-means over the features it covers (Eq. 1). As in the
official code the clustering is spherical (cosine): features are
L2-normalised, assigned to the most cosine-similar centre and every centre
is the normalised mean of its members; this matches the cosine cost of
Eq. 3 that the prototypes feed.
"""
import warnings

import torch
import torch.nn.functional as F

__all__ = ['cosine_cost', 'kmeans_prototypes']


def _check_features(features: torch.Tensor, name: str) -> None:
    if not isinstance(features, torch.Tensor):
        raise ValueError(
            f'{name} must be a torch.Tensor, got {type(features).__name__}')
    if features.dim() != 2 or features.shape[1] < 1:
        raise ValueError(
            f'{name} must have shape (N, D), got {tuple(features.shape)}')
    if not features.is_floating_point():
        raise ValueError(f'{name} must be floating point, got '
                         f'{features.dtype}')
    if not bool(torch.isfinite(features).all()):
        raise ValueError(f'{name} contains NaN or inf')


def _kmeans_pp(x: torch.Tensor, k: int,
               generator: torch.Generator) -> torch.Tensor:
    """k-means++ seeding on unit vectors (``D^2 = 2 - 2 cos``).

    Args:
        x (torch.Tensor): Unit-norm points of shape (n, D), n >= k.
        k (int): Number of centres.
        generator (torch.Generator): CPU generator for the draws.

    Returns:
        torch.Tensor: Indices of the k seeds, shape (k, ).
    """
    n = x.shape[0]
    first = int(torch.randint(n, (1, ), generator=generator))
    chosen = [first]
    d2 = (2 - 2 * (x @ x[first])).clamp_min(0)
    for _ in range(1, k):
        weights = d2.double().cpu()
        total = float(weights.sum())
        if total > 0:
            idx = int(torch.multinomial(weights / total, 1,
                                        generator=generator))
        else:
            # All remaining points coincide with a centre: draw uniformly.
            idx = int(torch.randint(n, (1, ), generator=generator))
        chosen.append(idx)
        d2 = torch.minimum(d2, (2 - 2 * (x @ x[idx])).clamp_min(0))
    return torch.tensor(chosen, dtype=torch.long)


def kmeans_prototypes(features: torch.Tensor,
                      mask: torch.Tensor,
                      k: int = 3,
                      iters: int = 100,
                      seed: int = 0,
                      mask_name: str = 'mask') -> torch.Tensor:
    """Spherical K-means prototypes of the masked features (Eq. 1).

    Seeding is k-means++ with draws from a CPU ``torch.Generator`` seeded
    by ``seed``, so the result is deterministic for a given input and seed
    (also on other devices, the draws are made on the CPU). Lloyd
    iterations alternate assignment to the most cosine-similar centre and
    re-centring (normalised member mean) until the assignment no longer
    changes or ``iters`` iterations ran. A centre that loses all members
    is moved to the member farthest from its own centre.

    Fewer masked features than ``k``: a :class:`UserWarning` is issued and
    the ``n < k`` normalised features are returned repeated cyclically
    (row ``i`` is feature ``i mod n``), so the output always has ``k``
    rows and the prototype count ``M = 2K`` stays fixed downstream.

    Args:
        features (torch.Tensor): Features of shape (N, D), finite.
        mask (torch.Tensor): Boolean selection of shape (N, ).
        k (int): Number of prototypes K >= 1.
        iters (int): Maximum number of Lloyd iterations (>= 0).
        seed (int): Seed of the k-means++ draws.
        mask_name (str): Name of the mask used in error messages (e.g.
            ``'fg_ref'``).

    Returns:
        torch.Tensor: Unit-norm prototypes of shape (k, D), dtype and
        device of ``features``.

    Raises:
        ValueError: If ``features`` is not a finite (N, D) float tensor,
            ``mask`` is not an (N, ) boolean tensor, ``mask`` selects no
            feature, or ``k`` / ``iters`` are out of range.
    """
    _check_features(features, 'features')
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
        raise ValueError(f'{mask_name} must be a boolean torch.Tensor')
    if mask.shape != features.shape[:1]:
        raise ValueError(
            f'{mask_name} must have shape ({features.shape[0]}, ) to match '
            f'features, got {tuple(mask.shape)}')
    if int(k) != k or k < 1:
        raise ValueError(f'k must be an integer >= 1, got {k}')
    if int(iters) != iters or iters < 0:
        raise ValueError(f'iters must be an integer >= 0, got {iters}')
    x = F.normalize(features[mask.to(features.device)], dim=1)
    n = x.shape[0]
    if n == 0:
        raise ValueError(
            f'{mask_name} selects no features: cannot build prototypes')
    if n < k:
        warnings.warn(
            f'{mask_name} selects {n} feature(s) for k={k} prototypes; '
            'repeating them cyclically', UserWarning)
        return x[torch.arange(k, device=x.device) % n].clone()

    generator = torch.Generator(device='cpu').manual_seed(int(seed))
    centres = x[_kmeans_pp(x, k, generator).to(x.device)].clone()
    labels = None
    for _ in range(iters):
        sim = x @ centres.T
        best, new_labels = sim.max(dim=1)
        if labels is not None and torch.equal(new_labels, labels):
            break
        labels = new_labels
        counts = torch.bincount(labels, minlength=k)
        sums = x.new_zeros(k, x.shape[1]).index_add_(0, labels, x)
        for j in torch.nonzero(counts == 0).flatten().tolist():
            # Empty cluster: re-seed at the worst-fitted point, which then
            # leaves its old cluster.
            far = int(best.argmin())
            sums[j] = x[far]
            sums[labels[far]] -= x[far]
            best[far] = float('inf')
        norms = sums.norm(dim=1, keepdim=True)
        # A member mean of zero length (antipodal members) keeps its centre.
        centres = torch.where(norms > 1e-12, sums / norms.clamp_min(1e-12),
                              centres)
    return centres


def cosine_cost(features: torch.Tensor,
                prototypes: torch.Tensor) -> torch.Tensor:
    """Feature-prototype cost of Eq. 3: ``1 - cos(F~, P)``.

    Zero-length vectors have cosine 0 (cost 1) with everything.

    Args:
        features (torch.Tensor): Flattened features F~ of shape (N, D).
        prototypes (torch.Tensor): Prototypes P of shape (M, D).

    Returns:
        torch.Tensor: Cost of shape (N, M) in [0, 2].

    Raises:
        ValueError: If either input is not a finite 2-D float tensor or
            their feature dimensions differ.
    """
    _check_features(features, 'features')
    _check_features(prototypes, 'prototypes')
    if features.shape[1] != prototypes.shape[1]:
        raise ValueError(
            f'features have D={features.shape[1]} but prototypes have '
            f'D={prototypes.shape[1]}')
    sim = F.normalize(features, dim=1) @ F.normalize(
        prototypes.to(features), dim=1).T
    return (1 - sim).clamp(0, 2)
