"""AMA-SAM's weighted domain-classification loss (Eq. 3)."""
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmseg.models.losses.utils import weight_reduce_loss
from torch import Tensor, nn

from nucseg.registry import MODELS

__all__ = ['inverse_frequency_weights', 'main_aux_weights', 'CGRLLoss']

REDUCTIONS = ('none', 'mean', 'sum')


def inverse_frequency_weights(counts: Sequence[int]) -> List[float]:
    """Per-domain weights inversely proportional to the image counts.

    :math:`w_d = (1 / n_d) / \\mathrm{mean}_k (1 / n_k)`, i.e. the weights
    are proportional to ``1 / n_d`` and average to 1 over the domains. For
    two domains this is ``w_main = 2 n_aux / (n_main + n_aux)`` and
    ``w_aux = 2 n_main / (n_main + n_aux)``.

    Args:
        counts (Sequence[int]): Number of training images of each domain.

    Returns:
        list[float]: One weight per domain, in the order of ``counts``.

    Raises:
        ValueError: ``counts`` is empty or holds a count below 1.
    """
    counts = [int(n) for n in counts]
    if not counts:
        raise ValueError('counts must name at least one domain')
    if min(counts) < 1:
        raise ValueError(f'image counts must be >= 1, got {counts}')
    inv = [1.0 / n for n in counts]
    mean_inv = sum(inv) / len(inv)
    return [v / mean_inv for v in inv]


def main_aux_weights(domain_sizes: Sequence[int],
                     primary_ids: Sequence[int] = (0, )
                     ) -> Tuple[float, float]:
    """Eq. 3's ``(w_main, w_aux)`` from the image counts of every domain.

    ``w_main`` is inversely proportional to the number of primary images,
    ``w_aux`` to the number of auxiliary images of all auxiliary data sets
    together; the pair averages to 1. Over an epoch the primary and the
    auxiliary samples then carry the same total loss weight (M + T + C + CP
    with 30 / 50 / 30 / 64 images: ``w_main = 1.655``, ``w_aux = 0.345``,
    mass 49.7 : 49.7).

    Args:
        domain_sizes (Sequence[int]): Training images of each domain id.
        primary_ids (Sequence[int]): Ids of the primary domain(s).

    Returns:
        tuple[float, float]: ``w_main``, ``w_aux``.

    Raises:
        ValueError: No primary or no auxiliary domain, or a bad id / count.
    """
    sizes = [int(n) for n in domain_sizes]
    prim = sorted({int(i) for i in primary_ids})
    if not prim or prim[0] < 0 or prim[-1] >= len(sizes):
        raise ValueError(f'primary_ids {list(primary_ids)} must index the '
                         f'{len(sizes)} domains of domain_sizes {sizes}')
    n_main = sum(sizes[i] for i in prim)
    n_aux = sum(n for i, n in enumerate(sizes) if i not in prim)
    if len(prim) == len(sizes):
        raise ValueError(f'domain_sizes {sizes} has no auxiliary domain '
                         f'(primary ids {prim}): nothing to weight')
    w_main, w_aux = inverse_frequency_weights([n_main, n_aux])
    return w_main, w_aux


WEIGHTINGS = ('main_aux', 'per_domain')


@MODELS.register_module()
class CGRLLoss(nn.Module):
    """Weighted binary cross-entropy of the domain discriminator (Eq. 3).

    .. math::

        L_{CGRL} = -\\frac{1}{N} \\sum_i \\big[w_{main}\\, y_i \\log D(X'_i)
        + w_{aux} (1 - y_i) \\log(1 - D(X'_i))\\big]

    with :math:`y_i = 1` for primary samples. ``D`` is given as logits and
    the loss uses ``binary_cross_entropy_with_logits`` (numerically stable;
    equal to the formula above). The sum is divided by the batch size
    ``N`` (not by the sum of the weights), as in Eq. 3.

    Weights (choose at most one way):

    * ``w_main`` and ``w_aux``: fixed weights of primary and auxiliary
      samples;
    * ``domain_sizes`` (given here or set before training by
      :class:`~nucseg.engine.hooks.DomainSizesHook` from the training
      set): the training image count of every domain id. With
      ``weighting='main_aux'`` (default, Eq. 3's two weights)
      :func:`main_aux_weights` gives ``w_main`` inversely proportional to
      the primary images and ``w_aux`` to *all* auxiliary images together,
      so the primary and the auxiliary domains are balanced 1 : 1. With
      ``weighting='per_domain'`` each sample gets the weight of its own
      data set, ``inverse_frequency_weights(domain_sizes)[domain_id]``,
      which balances every data set against every other (primary :
      auxiliary = 1 : number of auxiliary sets);
    * neither: all weights 1 (plain BCE).

    Args:
        w_main (float, optional): Weight of primary samples.
        w_aux (float, optional): Weight of auxiliary samples.
        domain_sizes (Sequence[int], optional): Image count per domain id.
        primary_ids (Sequence[int]): Domain ids of the primary data set(s)
            (``main_aux`` weighting; the hook takes them from the data set).
        weighting (str): ``'main_aux'`` or ``'per_domain'``.
        reduction (str): ``'mean'`` (divide by ``N`` or ``avg_factor``),
            ``'sum'`` or ``'none'`` (per-sample ``(B,)`` losses).
        loss_weight (float): Multiplies the loss. It is a global factor,
            e.g. :math:`\\alpha` of Eq. 6 if the segmentor does not apply
            it itself; keep 1.0 otherwise.
        loss_name (str): Key of the loss in the loss dict.

    Raises:
        ValueError: Both ways of weighting given, only one of ``w_main`` /
            ``w_aux`` given, a negative weight, or an unknown reduction or
            weighting.
    """

    def __init__(self,
                 w_main: Optional[float] = None,
                 w_aux: Optional[float] = None,
                 domain_sizes: Optional[Sequence[int]] = None,
                 primary_ids: Sequence[int] = (0, ),
                 weighting: str = 'main_aux',
                 reduction: str = 'mean',
                 loss_weight: float = 1.0,
                 loss_name: str = 'loss_cgrl') -> None:
        super().__init__()
        if (w_main is None) != (w_aux is None):
            raise ValueError('give both w_main and w_aux or neither, got '
                             f'w_main={w_main}, w_aux={w_aux}')
        if w_main is not None and domain_sizes is not None:
            raise ValueError('give either w_main/w_aux or domain_sizes, '
                             'not both')
        if reduction not in REDUCTIONS:
            raise ValueError(f'reduction must be one of {REDUCTIONS}, got '
                             f'{reduction!r}')
        if weighting not in WEIGHTINGS:
            raise ValueError(f'weighting must be one of {WEIGHTINGS}, got '
                             f'{weighting!r}')
        self.weighting = weighting
        #: True when w_main / w_aux were given (DomainSizesHook keeps them).
        self.fixed_weights = w_main is not None
        self.w_main = 1.0 if w_main is None else float(w_main)
        self.w_aux = 1.0 if w_aux is None else float(w_aux)
        if self.w_main < 0 or self.w_aux < 0:
            raise ValueError(f'w_main and w_aux must be >= 0, got '
                             f'{self.w_main}, {self.w_aux}')
        self.domain_sizes: Optional[List[int]] = None
        self.per_domain_weights: Optional[List[float]] = None
        if domain_sizes is not None:
            self.set_domain_sizes(domain_sizes, primary_ids)
        self.reduction = reduction
        self.loss_weight = float(loss_weight)
        self._loss_name = loss_name

    def set_domain_sizes(self,
                         domain_sizes: Sequence[int],
                         primary_ids: Sequence[int] = (0, )) -> None:
        """Eq. 3's weights from the image count of every domain.

        Called by :class:`~nucseg.engine.hooks.DomainSizesHook` with the
        training set's ``domain_sizes`` and ``primary_ids`` before training
        starts. ``main_aux`` sets ``w_main`` / ``w_aux``
        (:func:`main_aux_weights`); ``per_domain`` sets one weight per
        domain id.
        """
        self.domain_sizes = [int(n) for n in domain_sizes]
        if self.weighting == 'main_aux':
            self.w_main, self.w_aux = main_aux_weights(
                self.domain_sizes, primary_ids)
            self.per_domain_weights = None
        else:
            self.per_domain_weights = inverse_frequency_weights(
                self.domain_sizes)

    @staticmethod
    def domain_weights(
        num_primary: int, num_aux: Union[int, Sequence[int]]
    ) -> Tuple[float, Union[float, List[float]]]:
        """``(w_main, w_aux)`` inversely proportional to the image counts.

        Args:
            num_primary (int): Images of the primary data set.
            num_aux (int | Sequence[int]): Images of the auxiliary data set,
                or of each auxiliary data set.

        Returns:
            tuple: ``w_main`` and ``w_aux`` (a float, or a list with one
            weight per auxiliary set), see
            :func:`inverse_frequency_weights`.
        """
        if isinstance(num_aux, (list, tuple)):
            w = inverse_frequency_weights([num_primary, *num_aux])
            return w[0], w[1:]
        w = inverse_frequency_weights([num_primary, int(num_aux)])
        return w[0], w[1]

    def sample_weights(self, is_primary: Tensor,
                       domain_id: Optional[Tensor] = None) -> Tensor:
        """Weight of each sample.

        Args:
            is_primary (Tensor): ``(B,)`` bool.
            domain_id (Tensor, optional): ``(B,)`` integer domain ids;
                required with ``domain_sizes``.

        Returns:
            Tensor: ``(B,)`` float weights.
        """
        if self.per_domain_weights is None:
            return torch.where(
                is_primary,
                is_primary.new_tensor(self.w_main, dtype=torch.float32),
                is_primary.new_tensor(self.w_aux, dtype=torch.float32))
        if domain_id is None:
            raise ValueError('domain_id is required when CGRLLoss is built '
                             'with domain_sizes')
        domain_id = torch.as_tensor(domain_id, device=is_primary.device)
        if domain_id.shape != is_primary.shape:
            raise ValueError(f'domain_id must have shape '
                             f'{tuple(is_primary.shape)}, got '
                             f'{tuple(domain_id.shape)}')
        n = len(self.per_domain_weights)
        if domain_id.numel() and (domain_id.min() < 0
                                  or domain_id.max() >= n):
            raise ValueError(f'domain_id values must be in [0, {n}) '
                             f'(domain_sizes={self.domain_sizes}), got '
                             f'{domain_id.tolist()}')
        table = torch.tensor(
            self.per_domain_weights, device=is_primary.device)
        return table[domain_id.long()]

    def forward(self,
                pred: Tensor,
                target: Tensor,
                domain_id: Optional[Tensor] = None,
                weight: Optional[Tensor] = None,
                avg_factor: Optional[float] = None,
                reduction_override: Optional[str] = None,
                **kwargs) -> Tensor:
        """Eq. 3.

        Args:
            pred (Tensor): ``(B,)`` or ``(B, 1)`` discriminator logits.
            target (Tensor): ``(B,)`` bool or 0/1, ``y_i = 1`` for primary
                samples.
            domain_id (Tensor, optional): ``(B,)`` domain ids (needed with
                ``domain_sizes``).
            weight (Tensor, optional): ``(B,)`` extra per-sample weights.
            avg_factor (float, optional): Divisor instead of ``N`` for the
                mean.
            reduction_override (str, optional): Overrides ``reduction``.

        Returns:
            Tensor: Scalar loss (``(B,)`` for ``reduction='none'``).
        """
        reduction = reduction_override or self.reduction
        if reduction not in REDUCTIONS:
            raise ValueError(f'reduction_override must be one of '
                             f'{REDUCTIONS}, got {reduction!r}')
        if pred.dim() == 2 and pred.shape[1] == 1:
            pred = pred[:, 0]
        if pred.dim() != 1:
            raise ValueError(f'pred must be (B,) or (B, 1) logits, got '
                             f'{tuple(pred.shape)}')
        target = torch.as_tensor(target, device=pred.device)
        if target.shape != pred.shape:
            raise ValueError(f'target must have shape {tuple(pred.shape)}, '
                             f'got {tuple(target.shape)}')
        if target.dtype != torch.bool:
            if ((target != 0) & (target != 1)).any():
                raise ValueError('target (is_primary) must be 0/1')
            target = target.bool()
        w = self.sample_weights(target, domain_id).to(pred.dtype)
        loss = F.binary_cross_entropy_with_logits(
            pred, target.to(pred.dtype), reduction='none') * w
        if weight is not None:
            weight = weight.to(pred.dtype)
        loss = weight_reduce_loss(loss, weight, reduction, avg_factor)
        return self.loss_weight * loss

    @property
    def loss_name(self) -> str:
        """Name of the loss item (``loss_`` prefix: part of the total)."""
        return self._loss_name
