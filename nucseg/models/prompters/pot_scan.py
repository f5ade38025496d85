"""POT-Scan: progressive partial-OT scan of the transported mass (Sec. 3.2).

The features of one image are matched to ``K`` foreground and ``K``
background prototypes by partial OT (:func:`partial_ot`) for a growing
transported mass ``rho = rho0, rho0 + step, ...``. Each plan is turned
into an image-scale foreground mask by a caller-supplied ``to_foreground``
(activation maps, resize, DenseCRF, Otsu, clean-up); the scan stops at the
first step whose mask *merges*, and keeps the last step before it.

What "merge" means. The paper stops "once multiple compact regions merge
into a large connected component". The official code (``get_points`` in
``project/feature_points.py``) runs, for every ``rho`` after ``rho0``::

    coverage = |mask & fg_ref| / |fg_ref|
    if coverage < 0.95: accept, continue        # still growing into fg_ref
    if is_mask_valid(mask, best_mask): accept   # no merged component
    else: break                                 # keep the previous step

where ``is_mask_valid`` (``project/utils/mask_check.py``) rejects a mask
when its largest 8-connected component exceeds 20000 px (``area_thresh``)
**or** when any of its 3 largest components (``top_n``) overlaps more than
5 components (``overlap_thresh``) of the previously accepted mask -- the
literal "regions merge" test. Here the first test is
``max_component_area`` and the second ``max_merged_regions`` (with
``merge_top_n``); ``max_merged_regions=None`` turns the second off. The
first step (``rho0``) is accepted unconditionally. ``merge_rule`` selects:

- ``'gated'`` (default, the official control flow): a step merges iff its
  mask covers ``>= cover_ratio`` of the foreground reference **and** it
  fails one of the two tests above;
- ``'any'``: a step merges iff the coverage reaches ``cover_ratio`` **or**
  one of the tests fails (it tends to stop right after ``rho0``);
- ``'component'``: the two tests alone (the paper's wording).

If no step merges the scan ends at the last grid value ``<= rho_max``.
Like the official code, the result also carries an *expanded* mask at
``min(rho_max, rho + expand_steps * step)``, from which the caller samples
negative prompts ("expanded background masks").
"""
import math
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from scipy import ndimage as ndi

from nucseg.models.prompters.partial_ot import partial_ot
from nucseg.models.prompters.prototypes import (cosine_cost,
                                                kmeans_prototypes)
from nucseg.registry import TASK_UTILS

__all__ = ['POTScan', 'POTScanResult', 'POTScanStep', 'activation_maps']

ArrayLike = Union[torch.Tensor, np.ndarray]
ToForeground = Callable[[torch.Tensor, float], np.ndarray]
MERGE_RULES = ('gated', 'any', 'component')


def activation_maps(plan: torch.Tensor,
                    fg_cols: Sequence[int],
                    bg_cols: Sequence[int],
                    shape: Tuple[int, int],
                    similarity: Optional[torch.Tensor] = None,
                    per_position: bool = True,
                    slack_to_bg: bool = False) -> torch.Tensor:
    """Foreground / background activation maps of a plan on the feature grid.

    Reading of the paper's ``F* = F~ (.) T* in R^{hw x 2K}``: ``F~`` is
    ``hw x d`` and ``T*`` is ``hw x 2K``, so a Hadamard product is only
    defined per position and prototype. We read ``T*`` as per-position
    prototype weights: the activation of prototype ``k`` at position ``i``
    is the mass ``T*_ik`` the plan sends from ``i`` to ``k``, optionally
    multiplied by the feature-prototype similarity ``S_ik = 1 - C_ik`` of
    Eq. 3 (``similarity``; this is what the official code does: plan times
    similarity). The class maps are the sums over each class's prototypes,
    ``[F_fg, F_bg] = [sum_k F*_fg^k, sum_k F*_bg^k]``; resizing, DenseCRF
    and Otsu are left to the caller.

    Args:
        plan (torch.Tensor): Plan of shape (N, M) or (h, w, M), rows
            summing to at most ``1/N`` (output of :func:`partial_ot`).
        fg_cols (Sequence[int]): Foreground prototype columns.
        bg_cols (Sequence[int]): Background prototype columns.
        shape (tuple[int, int]): Feature grid (h, w), ``h * w = N``.
        similarity (torch.Tensor, optional): ``S = 1 - C``, same shape as
            ``plan``, multiplied in elementwise before the class sums.
        per_position (bool): Multiply by ``N`` so that each position's
            activations are fractions of its own mass (in [0, 1], summing
            with the slack to 1). The plan itself is never rescaled.
        slack_to_bg (bool): Add the untransported mass of each position,
            ``1/N - sum_k T_ik``, to the background map.

    Returns:
        torch.Tensor: Activation maps of shape (h, w, 2): channel 0
        foreground, channel 1 background.

    Raises:
        ValueError: If the shapes are inconsistent or a column index is out
            of range.
    """
    h, w = (int(s) for s in shape)
    if not isinstance(plan, torch.Tensor):
        raise ValueError('plan must be a torch.Tensor')
    flat = plan.reshape(-1, plan.shape[-1]) if plan.dim() == 3 else plan
    if flat.dim() != 2 or flat.shape[0] != h * w:
        raise ValueError(
            f'plan of shape {tuple(plan.shape)} does not match the feature '
            f'grid {(h, w)}')
    m = flat.shape[1]
    cols = [int(c) for c in list(fg_cols) + list(bg_cols)]
    if not cols or min(cols) < 0 or max(cols) >= m:
        raise ValueError(f'fg_cols/bg_cols must index the {m} plan columns, '
                         f'got {list(fg_cols)} / {list(bg_cols)}')
    weighted = flat
    if similarity is not None:
        if similarity.numel() != flat.numel():
            raise ValueError(
                f'similarity of shape {tuple(similarity.shape)} does not '
                f'match plan {tuple(plan.shape)}')
        weighted = flat * similarity.reshape(flat.shape).to(flat)
    fg = weighted[:, list(fg_cols)].sum(dim=1)
    bg = weighted[:, list(bg_cols)].sum(dim=1)
    if slack_to_bg:
        bg = bg + (1.0 / flat.shape[0] - flat.sum(dim=1)).clamp_min(0)
    maps = torch.stack([fg, bg], dim=-1)
    if per_position:
        maps = maps * flat.shape[0]
    return maps.reshape(h, w, 2)


@dataclass
class POTScanStep:
    """One evaluated ``rho`` of the scan.

    Attributes:
        rho (float): Transported mass.
        foreground (np.ndarray): ``to_foreground``'s HxW bool mask.
        largest_component (int): Pixels of its largest component.
        coverage (float): Fraction of the foreground reference covered.
        merged_regions (int): Largest number of components of the
            previously accepted mask that one of the ``merge_top_n``
            largest components overlaps (0 for the first step).
        merged (bool): Whether the merge rule fired.
        accepted (bool): Whether the step became the kept result so far
            (the first step always does).
        n_iter (int): Partial-OT iterations.
        converged (bool): Whether partial OT reached its tolerance.
    """
    rho: float
    foreground: np.ndarray
    largest_component: int
    coverage: float
    merged_regions: int
    merged: bool
    accepted: bool
    n_iter: int
    converged: bool


@dataclass
class POTScanResult:
    """Outcome of :class:`POTScan`.

    Attributes:
        rho (float): Kept transported mass (last step before the merge).
        plan (torch.Tensor): Its plan, shape (h, w, M), total mass ``rho``.
        foreground (np.ndarray): Its HxW bool foreground mask.
        stopped_by (str): ``'merge'`` or ``'rho_max'``.
        history (list[POTScanStep]): Every evaluated step, in order.
        prototypes (torch.Tensor): Prototypes (M, D), foreground first.
        cost (torch.Tensor): Cost of Eq. 3, shape (N, M), ``ot_dtype``.
        fg_cols (tuple[int]): Foreground columns of plan / cost.
        bg_cols (tuple[int]): Background columns.
        expanded_rho (float | None): Mass of the expanded mask.
        expanded_foreground (np.ndarray | None): Expanded HxW mask.
    """
    rho: float
    plan: torch.Tensor
    foreground: np.ndarray
    stopped_by: str
    history: List[POTScanStep] = field(default_factory=list)
    prototypes: Optional[torch.Tensor] = None
    cost: Optional[torch.Tensor] = None
    fg_cols: Tuple[int, ...] = ()
    bg_cols: Tuple[int, ...] = ()
    expanded_rho: Optional[float] = None
    expanded_foreground: Optional[np.ndarray] = None


def _as_bool_grid(mask: ArrayLike, name: str) -> np.ndarray:
    if isinstance(mask, torch.Tensor):
        mask = mask.detach().cpu().numpy()
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f'{name} must be a 2-D mask, got shape {mask.shape}')
    if mask.dtype != bool:
        raise ValueError(f'{name} must be boolean, got {mask.dtype}')
    return mask


def _resize_nearest(mask: np.ndarray, shape: Tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of a bool mask (pixel centres)."""
    h, w = mask.shape
    rows = np.minimum(((np.arange(shape[0]) + 0.5) * h / shape[0]).astype(
        np.intp), h - 1)
    cols = np.minimum(((np.arange(shape[1]) + 0.5) * w / shape[1]).astype(
        np.intp), w - 1)
    return mask[rows[:, None], cols[None, :]]


@TASK_UTILS.register_module()
class POTScan:
    """Progressive partial-OT scan of SPROUT (POT-Scan, Sec. 3.2).

    For ``rho`` on the grid ``rho0, rho0 + step, ... <= rho_max`` the plan
    of Eq. 4 between the features and the 2K prototypes is computed, turned
    into a foreground mask by ``to_foreground`` and tested by the merge
    rule (see the module docstring). The scan stops at the first merged
    step after ``rho0`` and returns the last accepted step.

    Args:
        k (int): Prototypes per class (K).
        rho0 (float): Initial transported mass.
        step (float): Increment of ``rho``.
        rho_max (float): Largest ``rho`` tried.
        eps (float): Entropic regularisation of partial OT.
        lambd (float): KL weight on the prototype marginal.
        max_iter (int): Partial-OT iteration cap.
        tol (float): Partial-OT tolerance on ``max |delta log b|``.
        max_component_area (int): Largest component area (px, image scale)
            above which a mask counts as merged.
        max_merged_regions (int, optional): A mask also counts as merged
            when one of its ``merge_top_n`` largest components overlaps
            more than this many components of the previously accepted
            mask (official code: 5); ``None`` disables the test.
        merge_top_n (int): Components checked by ``max_merged_regions``.
        cover_ratio (float): Coverage of the foreground reference that
            gates (``'gated'``) or triggers (``'any'``) the merge test.
        merge_rule (str): ``'gated'``, ``'any'`` or ``'component'``.
        connectivity (int): 1 (4-) or 2 (8-connectivity) for components.
        expand_steps (int): Steps beyond the kept ``rho`` for the expanded
            mask (0 disables it).
        kmeans_iters (int): Lloyd iterations of the prototype K-means.
        seed (int): Seed of the K-means initialisation.
        ot_dtype (str): Floating dtype of the cost and plan (``'float64'``
            by default: float32 rounding limits the partial-OT tolerance to
            ~1e-5, see :func:`partial_ot`).
    """

    def __init__(self,
                 k: int = 3,
                 rho0: float = 0.6,
                 step: float = 0.05,
                 rho_max: float = 1.0,
                 eps: float = 0.1,
                 lambd: float = 1.0,
                 max_iter: int = 1000,
                 tol: float = 1e-6,
                 max_component_area: int = 20000,
                 max_merged_regions: Optional[int] = None,
                 merge_top_n: int = 3,
                 cover_ratio: float = 0.95,
                 merge_rule: str = 'gated',
                 connectivity: int = 2,
                 expand_steps: int = 2,
                 kmeans_iters: int = 100,
                 seed: int = 0,
                 ot_dtype: str = 'float64') -> None:
        if not 0 < rho0 <= rho_max <= 1:
            raise ValueError('need 0 < rho0 <= rho_max <= 1, got '
                             f'rho0={rho0}, rho_max={rho_max}')
        if not step > 0:
            raise ValueError(f'step must be > 0, got {step}')
        if merge_rule not in MERGE_RULES:
            raise ValueError(
                f'merge_rule must be one of {MERGE_RULES}, got {merge_rule!r}')
        if connectivity not in (1, 2):
            raise ValueError(
                f'connectivity must be 1 or 2, got {connectivity}')
        if not 0 <= cover_ratio <= 1:
            raise ValueError(
                f'cover_ratio must lie in [0, 1], got {cover_ratio}')
        if max_component_area < 0:
            raise ValueError('max_component_area must be >= 0, got '
                             f'{max_component_area}')
        if max_merged_regions is not None and (
                int(max_merged_regions) != max_merged_regions
                or max_merged_regions < 0):
            raise ValueError('max_merged_regions must be None or an integer '
                             f'>= 0, got {max_merged_regions}')
        if int(merge_top_n) != merge_top_n or merge_top_n < 1:
            raise ValueError(
                f'merge_top_n must be an integer >= 1, got {merge_top_n}')
        if int(expand_steps) != expand_steps or expand_steps < 0:
            raise ValueError(
                f'expand_steps must be an integer >= 0, got {expand_steps}')
        if int(k) != k or k < 1:
            raise ValueError(f'k must be an integer >= 1, got {k}')
        self.k = int(k)
        self.rho0 = float(rho0)
        self.step = float(step)
        self.rho_max = float(rho_max)
        self.eps = eps
        self.lambd = lambd
        self.max_iter = max_iter
        self.tol = tol
        self.max_component_area = max_component_area
        self.max_merged_regions = (None if max_merged_regions is None else
                                   int(max_merged_regions))
        self.merge_top_n = int(merge_top_n)
        self.cover_ratio = float(cover_ratio)
        self.merge_rule = merge_rule
        self.structure = ndi.generate_binary_structure(2, connectivity)
        self.expand_steps = int(expand_steps)
        self.kmeans_iters = kmeans_iters
        self.seed = seed
        dtype = getattr(torch, str(ot_dtype), None)
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise ValueError(
                f'ot_dtype must name a torch floating dtype, got {ot_dtype!r}')
        self.ot_dtype = dtype

    def rhos(self) -> List[float]:
        """The scanned grid ``rho0 + i * step <= rho_max`` (rounded)."""
        count = int(math.floor((self.rho_max - self.rho0) / self.step + 1e-9))
        return [
            min(round(self.rho0 + i * self.step, 10), self.rho_max)
            for i in range(count + 1)
        ]

    def merged_regions(self, labels: np.ndarray, num: int,
                       previous: Optional[np.ndarray]) -> int:
        """Most components of ``previous`` joined by one large component.

        Args:
            labels (np.ndarray): HxW component labels of the new mask.
            num (int): Number of its components.
            previous (np.ndarray, optional): HxW bool previously accepted
                mask (``None``: nothing to merge, returns 0).

        Returns:
            int: Over the ``merge_top_n`` largest components of the new
            mask, the largest number of distinct ``previous`` components
            each overlaps.
        """
        if previous is None or num == 0:
            return 0
        old, _ = ndi.label(previous, structure=self.structure)
        sizes = np.bincount(labels.ravel())[1:]
        top = np.argsort(-sizes, kind='stable')[:self.merge_top_n] + 1
        most = 0
        for comp in top:
            hits = np.unique(old[labels == comp])
            most = max(most, int((hits != 0).sum()))
        return most

    def merge_test(self,
                   foreground: np.ndarray,
                   reference: np.ndarray,
                   previous: Optional[np.ndarray] = None
                   ) -> Tuple[int, float, int, bool]:
        """Largest component, coverage, merged regions and the decision.

        Args:
            foreground (np.ndarray): HxW bool mask of a step.
            reference (np.ndarray): HxW bool foreground reference.
            previous (np.ndarray, optional): HxW bool mask of the last
                accepted step, for ``max_merged_regions``.

        Returns:
            tuple[int, float, int, bool]: Largest component area (px),
            coverage ``|fg & ref| / |ref|``, merged regions (see
            :meth:`merged_regions`) and whether the step merged.
        """
        labels, num = ndi.label(foreground, structure=self.structure)
        largest = int(np.bincount(labels.ravel())[1:].max()) if num else 0
        coverage = float((foreground & reference).sum() /
                         max(int(reference.sum()), 1))
        regions = (self.merged_regions(labels, num, previous)
                   if self.max_merged_regions is not None else 0)
        invalid = largest > self.max_component_area or (
            self.max_merged_regions is not None
            and regions > self.max_merged_regions)
        covers = coverage >= self.cover_ratio
        if self.merge_rule == 'gated':
            merged = covers and invalid
        elif self.merge_rule == 'any':
            merged = covers or invalid
        else:
            merged = invalid
        return largest, coverage, regions, merged

    def _prepare(self, features: ArrayLike, fg_ref: np.ndarray,
                 prototypes: Optional[torch.Tensor]
                 ) -> Tuple[torch.Tensor, Tuple[int, int]]:
        if isinstance(features, np.ndarray):
            features = torch.from_numpy(features)
        if not isinstance(features, torch.Tensor):
            raise ValueError('features must be a torch.Tensor or ndarray')
        grid = tuple(fg_ref.shape)
        if features.dim() == 3:
            if tuple(features.shape[:2]) != grid:
                raise ValueError(
                    f'features of shape {tuple(features.shape)} do not '
                    f'match fg_ref of shape {grid}')
            features = features.reshape(-1, features.shape[-1])
        elif features.dim() != 2 or features.shape[0] != grid[0] * grid[1]:
            raise ValueError(
                f'features must be (h*w, D) or (h, w, D) for the grid '
                f'{grid} of fg_ref, got {tuple(features.shape)}')
        if not features.is_floating_point():
            features = features.float()
        if prototypes is not None and (
                prototypes.dim() != 2 or prototypes.shape[0] != 2 * self.k
                or prototypes.shape[1] != features.shape[1]):
            raise ValueError(
                f'prototypes must have shape ({2 * self.k}, '
                f'{features.shape[1]}) (K foreground rows then K '
                f'background rows), got {tuple(prototypes.shape)}')
        return features, grid

    def __call__(self,
                 features: ArrayLike,
                 fg_ref: ArrayLike,
                 bg_ref: ArrayLike,
                 to_foreground: ToForeground,
                 fg_ref_image: Optional[ArrayLike] = None,
                 prototypes: Optional[torch.Tensor] = None
                 ) -> POTScanResult:
        """Run the scan on one image.

        Args:
            features (torch.Tensor | np.ndarray): Features of shape
                (h, w, D) or (h*w, D) (row-major grid).
            fg_ref (torch.Tensor | np.ndarray): (h, w) bool foreground
                self-reference mask on the feature grid (prototypes).
            bg_ref (torch.Tensor | np.ndarray): (h, w) bool background
                self-reference mask on the feature grid.
            to_foreground (Callable): ``to_foreground(plan, rho)`` with
                ``plan`` the (h, w, M) plan tensor (foreground columns
                ``0..K-1``, background ``K..2K-1``), returning the HxW bool
                image-scale foreground mask (e.g. :func:`activation_maps`,
                resize, DenseCRF, Otsu, clean-up).
            fg_ref_image (torch.Tensor | np.ndarray, optional): HxW bool
                foreground reference at image scale for the coverage test;
                by default ``fg_ref`` resized (nearest) to the mask size.
            prototypes (torch.Tensor, optional): Precomputed (2K, D)
                prototypes (foreground rows first) instead of K-means.

        Returns:
            POTScanResult: The kept step, the history and the expanded
            mask.

        Raises:
            ValueError: On inconsistent shapes, empty reference masks or a
                ``to_foreground`` output that is not a 2-D bool mask of a
                constant shape.
        """
        fg_grid = _as_bool_grid(fg_ref, 'fg_ref')
        bg_grid = _as_bool_grid(bg_ref, 'bg_ref')
        if bg_grid.shape != fg_grid.shape:
            raise ValueError(f'bg_ref shape {bg_grid.shape} differs from '
                             f'fg_ref shape {fg_grid.shape}')
        features, (h, w) = self._prepare(features, fg_grid, prototypes)
        device = features.device
        if prototypes is None:
            prototypes = torch.cat([
                kmeans_prototypes(
                    features,
                    torch.from_numpy(fg_grid.ravel()).to(device),
                    self.k,
                    self.kmeans_iters,
                    self.seed,
                    mask_name='fg_ref'),
                kmeans_prototypes(
                    features,
                    torch.from_numpy(bg_grid.ravel()).to(device),
                    self.k,
                    self.kmeans_iters,
                    self.seed,
                    mask_name='bg_ref')
            ])
        cost = cosine_cost(features, prototypes).to(self.ot_dtype)
        m = cost.shape[1]
        reference = None
        if fg_ref_image is not None:
            reference = _as_bool_grid(fg_ref_image, 'fg_ref_image')
            if not reference.any():
                raise ValueError('fg_ref_image is empty')
        image_shape = None

        def evaluate(rho: float):
            nonlocal reference, image_shape
            plan, info = partial_ot(
                cost, rho, eps=self.eps, lambd=self.lambd,
                max_iter=self.max_iter, tol=self.tol, return_info=True)
            plan = plan.reshape(h, w, m)
            fg = to_foreground(plan, rho)
            if isinstance(fg, torch.Tensor):
                fg = fg.detach().cpu().numpy()
            fg = _as_bool_grid(fg, 'to_foreground output')
            if image_shape is None:
                image_shape = fg.shape
                if reference is None:
                    reference = _resize_nearest(fg_grid, image_shape)
                elif reference.shape != image_shape:
                    raise ValueError(
                        f'fg_ref_image shape {reference.shape} differs from '
                        f'the foreground masks {image_shape}')
            elif fg.shape != image_shape:
                raise ValueError(
                    'to_foreground output changed shape from '
                    f'{image_shape} to {fg.shape}')
            return plan, fg, info

        history: List[POTScanStep] = []
        kept = None
        stopped_by = 'rho_max'
        for i, rho in enumerate(self.rhos()):
            plan, fg, info = evaluate(rho)
            largest, coverage, regions, merged = self.merge_test(
                fg, reference, None if kept is None else kept[2])
            accepted = i == 0 or not merged
            history.append(
                POTScanStep(rho, fg, largest, coverage, regions, merged,
                            accepted, info.n_iter, info.converged))
            if not accepted:
                stopped_by = 'merge'
                break
            kept = (rho, plan, fg)

        rho, plan, fg = kept
        result = POTScanResult(
            rho=rho,
            plan=plan,
            foreground=fg,
            stopped_by=stopped_by,
            history=history,
            prototypes=prototypes,
            cost=cost,
            fg_cols=tuple(range(self.k)),
            bg_cols=tuple(range(self.k, m)))
        if self.expand_steps:
            rho_e = min(round(rho + self.expand_steps * self.step, 10),
                        self.rho_max)
            done = [s for s in history if abs(s.rho - rho_e) < 1e-9]
            result.expanded_rho = rho_e
            result.expanded_foreground = (
                done[0].foreground if done else evaluate(rho_e)[1])
        return result
