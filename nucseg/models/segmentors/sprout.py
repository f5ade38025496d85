"""SPROUT: training-free nuclear instance segmentation (Sec. 3, Fig. 2)."""
import itertools
import time
from typing import Dict, Optional

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from mmseg.utils import ConfigType, OptConfigType
from scipy import ndimage as ndi
from skimage.filters import threshold_otsu
from skimage.morphology import remove_small_holes, remove_small_objects
from torch import Tensor

from nucseg.models.prompters.point_prompts import (distance_maxima_points,
                                                   expanded_background,
                                                   negative_points,
                                                   positive_points)
from nucseg.models.prompters.pot_scan import activation_maps
from nucseg.registry import MODELS, TASK_UTILS
from nucseg.utils.config_check import accepted_kwargs, check_keys
from nucseg.utils.stain import stain_priors
from .training_free import TrainingFreeSegmentor

__all__ = ['SPROUT', 'grid_mask', 'clean_foreground']

POINT_METHODS = ('watershed', 'distance_maxima')


def _options_of(func, *data_args: str) -> tuple:
    """Keyword options of ``func`` without its data arguments."""
    return tuple(k for k in accepted_kwargs(func) if k not in data_args)


def grid_mask(mask: np.ndarray, shape, min_fraction: float = 0.5
              ) -> np.ndarray:
    """Downsample an ``HxW`` bool mask to a feature grid by area fraction.

    A cell is on when at least ``min_fraction`` of its pixels are.
    """
    frac = cv2.resize(mask.astype(np.float32), (shape[1], shape[0]),
                      interpolation=cv2.INTER_AREA)
    return frac >= min_fraction


def clean_foreground(mask: np.ndarray,
                     hole_area: int = 40,
                     min_area: int = 30,
                     nucleus_hole_area: int = 0,
                     max_clump_area: int = 0) -> np.ndarray:
    """Hole filling and small-object removal of a binary foreground.

    Holes up to ``hole_area`` px are filled everywhere (the paper's 40 px).
    With ``nucleus_hole_area`` and ``max_clump_area`` > 0, holes up to
    ``nucleus_hole_area`` px are also filled inside connected components of
    at most ``max_clump_area`` px: vesicular nuclei (dark rim, pale
    interior) become solid while holes in large stromal/cytoplasmic
    networks stay open. Objects of at most ``min_area`` px are removed.

    Args:
        mask (np.ndarray): ``HxW`` bool.

    Returns:
        np.ndarray: ``HxW`` bool.
    """
    out = remove_small_holes(mask, max_size=hole_area) if hole_area else mask
    if nucleus_hole_area and max_clump_area:
        filled = remove_small_holes(mask, max_size=nucleus_hole_area)
        comps, _ = ndi.label(filled)
        small = np.bincount(comps.ravel()) <= max_clump_area
        small[0] = False
        out = np.where(small[comps], filled, out)
    if min_area:
        out = remove_small_objects(out, max_size=min_area)
    return out


@MODELS.register_module()
class SPROUT(TrainingFreeSegmentor):
    """Training-free SPROUT pipeline as an mmseg segmentor (predict only).

    For each image (``HxWx3`` RGB at the resolution the test pipeline
    gives, e.g. MoNuSeg resized to 1024)::

        priors   = stain_priors(img)              # H, Otsu, fg/bg refs
        feats    = extractor(img)                 # D x h x w feature grid
        scan     = pot_scan(feats, refs, to_fg)   # Eq. 3-4, progressive rho
        to_fg(T) = Otsu(CRF(resize(activation_maps(T))))  # + clean-up
        pos      = positive_points([fg_ref, fg])  # watershed centroids
        neg      = negative_points(~expand(fg_expanded))  # 24 px grid
        cands    = mask_generator(img, pos, neg)  # SAM or watershed
        inst     = nms(cands, img)                # Alg. 3 (H of img), labels

    Nothing is trained; :meth:`loss` raises. The class declares
    ``training_free = True``, so ``tools/test.py CONFIG`` evaluates it
    without a checkpoint and ``tools/infer.py`` writes label maps (models
    with trained weights refuse to run without one). The prediction is
    resized (nearest) to ``ori_shape``.

    Args:
        extractor (dict): Feature extractor (``MODELS``) mapping a
            ``B x 3 x H x W`` RGB tensor in ``[0, 255]`` to ``B x D x h x w``
            (``FilterBankExtractor``, ``TiledExtractor`` with a SAM
            encoder, ``TorchvisionExtractor`` ...).
        pot_scan (dict): ``POTScan`` config (``TASK_UTILS``).
        crf (dict, optional): ``DenseCRF`` config (``TASK_UTILS``); ``None``
            skips the CRF (ablation).
        mask_generator (dict): ``SAMPointMaskGenerator`` or
            ``WatershedMaskGenerator`` (``TASK_UTILS``).
        nms (dict, optional): ``ContainmentAwareSoftNMS`` config
            (``TASK_UTILS``); ``None`` pastes the candidates directly (a
            watershed partition has no overlaps to suppress).
        priors (dict): Arguments of :func:`nucseg.utils.stain.stain_priors`
            (``top_t`` = 0.6; ``stain_matrix='macenko'`` for per-image
            stain vectors, ``h_sigma`` to smooth the H map).
        activation (dict): Arguments of
            :func:`~nucseg.models.prompters.activation_maps`
            (``slack_to_bg``: count untransported mass as background).
        fg_prior (bool): Intersect the activation foreground with the
            stain prior's Otsu foreground.
        points (dict): ``method``: ``'watershed'`` (the paper's watershed
            centroids of the stain reference and the scan foreground,
            ``min_distance`` 5, ``merge_distance`` 10, ``snap_to_mask``:
            move points that fall outside the masks onto them) or
            ``'distance_maxima'`` (h-maxima of the smoothed distance
            transform of the scan foreground, ``h``, ``sigma``);
            ``neg_grid`` (24), ``neg_margin`` (0), ``neg_mode`` ('center'
            keeps results deterministic) of the negative points.
        cleanup (dict): Arguments of :func:`clean_foreground` applied to the
            binarised activation map (``hole_area`` 40, ``min_area`` 30).
        ref_fraction (float): Area fraction for a feature cell to belong to
            a self-reference mask.
        data_preprocessor (dict, optional): Should keep raw RGB values
            (mean 0, std 1, ``bgr_to_rgb=False``).
    """

    def __init__(self,
                 extractor: ConfigType,
                 pot_scan: ConfigType,
                 mask_generator: ConfigType,
                 nms: OptConfigType = None,
                 crf: OptConfigType = None,
                 priors: Optional[dict] = None,
                 activation: Optional[dict] = None,
                 fg_prior: bool = False,
                 points: Optional[dict] = None,
                 cleanup: Optional[dict] = None,
                 ref_fraction: float = 0.5,
                 data_preprocessor: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 init_cfg: OptConfigType = None) -> None:
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.extractor = MODELS.build(extractor)
        self.pot_scan = TASK_UTILS.build(pot_scan)
        self.crf = TASK_UTILS.build(crf) if crf is not None else None
        self.mask_generator = TASK_UTILS.build(mask_generator)
        self.nms = TASK_UTILS.build(nms) if nms is not None else None
        # Dicts of options: a misspelt key fails here with its name.
        check_keys(priors, _options_of(stain_priors, 'img'),
                   'SPROUT.priors')
        check_keys(activation, ('per_position', 'slack_to_bg'),
                   'SPROUT.activation')
        check_keys(cleanup, _options_of(clean_foreground, 'mask'),
                   'SPROUT.cleanup')
        self.priors_cfg = dict(top_t=0.6)
        self.priors_cfg.update(priors or {})
        self.activation_cfg = dict(activation or {})
        self.fg_prior = bool(fg_prior)
        self.points_cfg = dict(
            method='watershed', min_distance=5, merge_distance=10.0,
            snap_to_mask=True, h=0.25, sigma=2.0, neg_grid=24,
            neg_margin=0.0, neg_mode='center')
        check_keys(points, self.points_cfg, 'SPROUT.points')
        self.points_cfg.update(points or {})
        if self.points_cfg['method'] not in POINT_METHODS:
            raise ValueError(f'points.method must be one of {POINT_METHODS},'
                             f" got {self.points_cfg['method']!r}")
        self.cleanup_cfg = dict(hole_area=40, min_area=30)
        self.cleanup_cfg.update(cleanup or {})
        self.ref_fraction = float(ref_fraction)
        self.test_cfg = test_cfg or {}
        for p in self.extractor.parameters():
            p.requires_grad_(False)
        # Intermediate results of the last image (debugging, figures).
        self.last_state: Optional[Dict[str, object]] = None

    # ------------------------------------------------------------------
    def _features(self, img: np.ndarray) -> Tensor:
        # The filter bank has buffers but no parameters.
        tensors = itertools.chain(self.extractor.parameters(),
                                  self.extractor.buffers())
        device = next(tensors, torch.empty(0)).device
        x = torch.from_numpy(img).permute(2, 0, 1)[None].float().to(device)
        with torch.no_grad():
            feat = self.extractor(x)
        if isinstance(feat, (list, tuple)):
            feat = feat[0]
        return feat[0].permute(1, 2, 0).float()  # h x w x D

    def _binarize(self, fg_prob: np.ndarray,
                  prior: Optional[np.ndarray] = None) -> np.ndarray:
        if fg_prob.max() - fg_prob.min() < 1e-6:
            return np.zeros(fg_prob.shape, bool)
        mask = fg_prob > threshold_otsu(fg_prob)
        if prior is not None:
            mask &= prior
        return clean_foreground(mask, **self.cleanup_cfg)

    def foreground_from_plan(self, img: np.ndarray, plan: Tensor,
                             fg_cols, bg_cols, crf=None,
                             prior: Optional[np.ndarray] = None
                             ) -> np.ndarray:
        """Activation maps -> resize -> dense CRF -> Otsu -> clean-up.

        Args:
            img (np.ndarray): ``HxWx3`` uint8 RGB.
            plan (Tensor): ``h x w x M`` partial-OT plan.
            fg_cols, bg_cols: Foreground / background plan columns.
            crf (callable, optional): CRF bound to ``img``
                (``DenseCRF.bind``); default ``self.crf``.
            prior (np.ndarray, optional): ``HxW`` bool mask intersected
                with the result before clean-up.

        Returns:
            np.ndarray: ``HxW`` bool foreground.
        """
        h, w = plan.shape[:2]
        act = activation_maps(plan, fg_cols, bg_cols, (h, w),
                              **self.activation_cfg)  # h x w x 2
        act = F.interpolate(
            act.permute(2, 0, 1)[None].float(), size=img.shape[:2],
            mode='bilinear', align_corners=False)[0]
        act = act.clamp_min(0).cpu().numpy()
        if crf is None and self.crf is not None:
            crf = self.crf.bind(img, 2)
        if crf is not None:
            total = act.sum(0, keepdims=True)
            probs = np.where(total > 1e-12, act / np.maximum(total, 1e-12),
                             0.5)
            # CRF labels: 0 background, 1 foreground.
            fg_prob = crf(probs[::-1].copy())[1]
        else:
            fg_prob = act[0]
        return self._binarize(fg_prob, prior)

    def segment(self, img: np.ndarray) -> np.ndarray:
        """Instance map (``HxW`` int32) of one ``HxWx3`` uint8 RGB image.

        ``self.last_state`` keeps the intermediate results and
        ``timings`` (seconds per stage) of the call.
        """
        timings: Dict[str, float] = {}
        clock = [time.perf_counter()]

        def lap(stage: str) -> None:
            now = time.perf_counter()
            timings[stage] = now - clock[0]
            clock[0] = now

        priors = stain_priors(img, **self.priors_cfg)
        lap('priors')
        if not priors.fg_ref.any() or not priors.bg_ref.any():
            self.last_state = dict(priors=priors, timings=timings)
            return np.zeros(img.shape[:2], np.int32)
        feats = self._features(img)
        lap('features')
        grid = feats.shape[:2]
        fg_ref = grid_mask(priors.fg_ref, grid, self.ref_fraction)
        bg_ref = grid_mask(priors.bg_ref, grid, self.ref_fraction)
        if not fg_ref.any() or not bg_ref.any():
            self.last_state = dict(priors=priors, timings=timings)
            return np.zeros(img.shape[:2], np.int32)

        k = self.pot_scan.k
        fg_cols, bg_cols = tuple(range(k)), tuple(range(k, 2 * k))
        # The CRF's pairwise terms depend on the image only: build once.
        crf = self.crf.bind(img, 2) if self.crf is not None else None

        prior = priors.coarse_fg if self.fg_prior else None

        def to_foreground(plan: Tensor, rho: float) -> np.ndarray:
            return self.foreground_from_plan(img, plan, fg_cols, bg_cols,
                                             crf, prior)

        scan = self.pot_scan(
            feats, fg_ref, bg_ref, to_foreground,
            fg_ref_image=priors.fg_ref)
        lap('pot_scan_crf')
        fg = scan.foreground
        expanded = (scan.expanded_foreground
                    if scan.expanded_foreground is not None else fg)
        pc = self.points_cfg
        if pc['method'] == 'watershed':
            pos = positive_points([priors.fg_ref, fg],
                                  min_distance=pc['min_distance'],
                                  merge_distance=pc['merge_distance'],
                                  snap_to_mask=pc['snap_to_mask'])
        else:
            pos = distance_maxima_points(fg, h=pc['h'], sigma=pc['sigma'])
        neg = negative_points(
            expanded_background(expanded, margin=pc['neg_margin']),
            grid=pc['neg_grid'], mode=pc['neg_mode'])
        lap('points')
        cands = self.mask_generator(
            img, pos, neg, fg_mask=fg, h_map=priors.h)
        lap('masks')
        if self.nms is not None:
            # The NMS scores with the H map of the image itself (fixed
            # H&E matrix, as the official code's rgb2hed), not with the
            # stain prior's (maybe Macenko / smoothed) map.
            inst = self.nms(cands, image=img)
        else:
            inst = cands
        if not isinstance(inst, np.ndarray):
            inst = inst.to_label_map(order='score')
        lap('nms')
        self.last_state = dict(
            priors=priors, scan=scan, foreground=fg, pos=pos, neg=neg,
            candidates=cands, timings=timings)
        return inst.astype(np.int32)

    # ------------------------------------------------------------------
    def extract_feat(self, inputs: Tensor) -> Tensor:
        return self.extractor(inputs)
