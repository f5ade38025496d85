"""Entropy minimisation and transformation-consistency (self-ensembling).

Terms of the self-ensembling UDA method's segmentation loss (Eq. 2-3):

* :func:`binary_entropy_loss`: mean per-pixel entropy of sigmoid
  probabilities (entropy minimisation);
* :func:`consistency_loss`: mean squared difference between the
  prediction of a transformed input (student) and the transformed
  prediction of the untransformed input (teacher: the same network, no
  gradient);
* :func:`dihedral` / :func:`sample_dihedral_ops`: the rotations by 90,
  180, 270 degrees and the flips used as transformations.
"""
from typing import List, Optional, Sequence

import torch
from torch import Tensor

__all__ = [
    'DIHEDRAL_OPS', 'SQUARE_ONLY_OPS', 'dihedral', 'apply_dihedral',
    'sample_dihedral_ops', 'binary_entropy_loss', 'consistency_loss'
]

#: Transformations of the self-ensembling term.
DIHEDRAL_OPS = ('rot90', 'rot180', 'rot270', 'hflip', 'vflip')
#: Those that swap height and width (square inputs only).
SQUARE_ONLY_OPS = ('rot90', 'rot270')


def dihedral(x: Tensor, op: str) -> Tensor:
    """Apply one transformation to the last two dims of ``x``.

    Args:
        x (Tensor): ``... x H x W``.
        op (str): One of :data:`DIHEDRAL_OPS` (rotations are
            counter-clockwise, as :func:`torch.rot90`).

    Returns:
        Tensor: The transformed tensor (``... x W x H`` for 90/270).
    """
    if op == 'rot90':
        return torch.rot90(x, 1, (-2, -1))
    if op == 'rot180':
        return torch.rot90(x, 2, (-2, -1))
    if op == 'rot270':
        return torch.rot90(x, 3, (-2, -1))
    if op == 'hflip':
        return x.flip(-1)
    if op == 'vflip':
        return x.flip(-2)
    raise ValueError(f'unknown transformation {op!r}; expected one of '
                     f'{DIHEDRAL_OPS}')


def apply_dihedral(x: Tensor, ops: Sequence[str]) -> Tensor:
    """Transform each item of a batch with its own operation.

    Args:
        x (Tensor): ``B x C x H x W``.
        ops (Sequence[str]): ``B`` operations.

    Returns:
        Tensor: ``B x C x H' x W'`` (all ops must give the same size).
    """
    if len(ops) != len(x):
        raise ValueError(f'{len(ops)} transformations for a batch of '
                         f'{len(x)}')
    return torch.stack([dihedral(item, op) for item, op in zip(x, ops)])


def sample_dihedral_ops(num: int,
                        square: bool,
                        ops: Sequence[str] = DIHEDRAL_OPS,
                        generator: Optional[torch.Generator] = None
                        ) -> List[str]:
    """Draw ``num`` transformations uniformly from ``ops``.

    For non-square inputs the 90/270 degree rotations are left out (they
    would change the shape of one item of a batch).

    Args:
        num (int): Number of draws.
        square (bool): Whether the inputs are square.
        ops (Sequence[str]): Candidates (subset of :data:`DIHEDRAL_OPS`).
        generator (torch.Generator, optional): Random generator (default:
            torch's global one, seeded by mmengine's ``randomness``).

    Returns:
        list[str]: The drawn operations.
    """
    unknown = [op for op in ops if op not in DIHEDRAL_OPS]
    if unknown or not ops:
        raise ValueError(f'transformations must be a non-empty subset of '
                         f'{DIHEDRAL_OPS}, got {list(ops)}')
    pool = [op for op in ops if square or op not in SQUARE_ONLY_OPS]
    if not pool:
        raise ValueError(f'no transformation of {list(ops)} keeps the shape '
                         'of non-square inputs; add rot180, hflip or vflip')
    idx = torch.randint(len(pool), (num, ), generator=generator)
    return [pool[i] for i in idx.tolist()]


def binary_entropy_loss(prob: Tensor, eps: float = 1e-6) -> Tensor:
    """Mean binary entropy of per-pixel foreground probabilities.

    ``-mean(p log p + (1 - p) log(1 - p))`` with ``p`` clamped to
    ``[eps, 1 - eps]``: 0 for confident (0/1) predictions, ``log 2`` for
    ``p = 0.5``. Eq. 2 of the paper writes the foreground term only; with
    one sigmoid output the two classes are ``p`` and ``1 - p``, so both
    terms are taken (the entropy of the pixel's class distribution).

    Args:
        prob (Tensor): Probabilities of any shape.
        eps (float): Clamp for the logarithms.

    Returns:
        Tensor: Scalar.
    """
    p = prob.float().clamp(eps, 1 - eps)  # float32 also under AMP
    return -(p * p.log() + (1 - p) * (1 - p).log()).mean()


def consistency_loss(student: Tensor, teacher: Tensor,
                     ops: Sequence[str]) -> Tensor:
    """Mean squared error between ``student`` and transformed ``teacher``.

    Eq. 3: ``|| S(pi(x)) - pi(S(x)) ||^2`` averaged over pixels and
    images. The teacher prediction is detached (no gradient flows through
    the teacher branch).

    Args:
        student (Tensor): ``B x C x H' x W'`` predictions of the
            transformed inputs ``pi_b(x_b)``.
        teacher (Tensor): ``B x C x H x W`` predictions of the inputs.
        ops (Sequence[str]): The ``B`` transformations ``pi_b``.

    Returns:
        Tensor: Scalar.
    """
    target = apply_dihedral(teacher.detach(), ops)
    if target.shape != student.shape:
        raise ValueError(f'student {tuple(student.shape)} and transformed '
                         f'teacher {tuple(target.shape)} differ in shape')
    return (student - target).pow(2).mean()
