"""SPROUT's SAM mask stage: one mask per positive point prompt.

Sec. 3.3, App. B.3 and E.1 of the SPROUT paper: the image is tiled into
512-px patches overlapping by 0.5; in each patch every positive point is
given to SAM together with its two nearest negative points (labels
``1, 0, 0``); the resulting masks are filtered by area and highly
overlapping predictions (IoU > 0.8) are merged. The containment-aware
soft NMS (``nucseg.models.postprocessors.soft_nms``) follows.

Implementation choices (the paper is silent; the official code
``Y-Research-SBU/SPROUT``, ``project/runSAM.py``, uses SAM 2 through its
per-point ``predict`` loop):

* **Patch grid.** Starts ``0, stride, 2 stride, ...`` with ``stride =
  round(patch_size * (1 - overlap))`` plus one last patch flush with the
  right / bottom border, so the whole image is covered (the official
  ``split_image`` drops the remainder). An image side shorter than the
  patch is padded at the bottom / right with SAM's mean colour (it becomes
  zero after SAM's normalisation, like SAM's own padding) so that every
  patch is ``patch_size`` square and nuclei keep the same magnification;
  masks are clipped to the image afterwards.
* **Prompts.** Points on a patch are those with ``left <= x < left + P``
  (same for y); the negatives of a prompt are the ``num_neg`` nearest
  negatives *inside the patch* (fewer if the patch has fewer).
* **Embedding once per patch**, computed exactly as
  :meth:`segment_anything.SamPredictor.set_image` does
  (:class:`ResizeLongestSide` + :meth:`Sam.preprocess`); patches without
  positive points are skipped.
* **Decoding.** Prompts are decoded ``points_per_batch`` at a time
  (default :func:`default_points_per_batch`: 1 on CPU, 64 on GPU).
  ``decoder='sam'`` calls SAM's ``MaskDecoder``; ``'exact'`` does the
  prompt-independent part of its work once per patch
  (:class:`SharedImageDecoding`; bit-identical to
  ``SamPredictor.predict`` for batches of one); ``'fast'`` (default) in
  addition computes the output upscaling as matrix products for the
  chosen mask only — the same arithmetic in another order, so logits
  differ by float rounding (~1e-7) and a mask pixel flips only where a
  logit is that close to 0 (none in the benchmark and tests; choose
  ``'exact'`` for bit-identity).
* ``multimask_output=False`` (default) as in the official code: the
  prompt (a positive plus negatives) is not ambiguous, and SAM's
  documentation recommends a single mask for multi-point prompts. With
  ``True`` the best of SAM's three masks (highest predicted IoU) is used.
* **Windowed upsampling.** SAM upsamples the ``256 x 256`` low-resolution
  logits of every mask to ``1024 x 1024`` and then to the patch size before
  thresholding at 0. Bilinear interpolation is a convex combination, so an
  output pixel can only be positive next to a positive low-resolution
  logit: the logits are thresholded at low resolution to find each mask's
  box, and SAM's two interpolations are evaluated only on that box plus a
  margin. For power-of-two size ratios (the default 1024 / 512) the
  sampling positions in the window coincide with the full-size ones and
  the masks are identical to SAM's (checked by the tests and the
  benchmark). Other ratios, or ``exact_upsample=True``, use SAM's
  :meth:`Sam.postprocess_masks` on the whole patch.
* **Smoothing** (official ``keep_and_smooth``, ``smooth_radius``): a mask
  in several pieces keeps its largest 4-connected piece, closed and opened
  with a disk of radius 2 and hole-filled
  (:func:`~nucseg.models.mask_generators.smoothing.keep_largest_and_smooth`);
  before the filters, as in the official code.
* **Filters** (per mask, after clipping to the image): ``min_area <= area
  <= max_area`` (50 and 20000 px); from the official code, optionally,
  masks touching an *inner* patch border (within ``border_margin`` px of a
  patch side that is not the image border; such masks are cut by the
  patch and the nucleus is whole in a neighbouring patch) and masks
  containing more than ``max_neg_inside`` negative points of the patch.
* **Per-patch NMS** (``patch_nms``, official ``generate_instance``): the
  surviving masks of each patch are merged (IoU > ``merge_iou``) and go
  through the containment-aware soft NMS with the patch's own H map
  (``post_process_nms(patch_masks, patch_scores, patch_img)``); the kept
  masks carry the NMS's (combined, decayed) scores. The whole-image pass
  of the official code is the segmentor's ``nms`` after this generator.
* **Merging.** Candidates of all patches with mask IoU > ``merge_iou``
  are grouped transitively (union-find, as the official code) and each
  group keeps its member with the highest score (lower index on ties).
* **Score** = SAM's predicted IoU of the mask (not clipped), or the patch
  NMS's score with ``patch_nms``.
"""
from dataclasses import dataclass, field
from typing import List, Optional, Tuple, Union

import numpy as np
import torch
from mmengine.logging import print_log
from scipy import sparse
from scipy.sparse.csgraph import connected_components
from segment_anything.modeling import Sam
from segment_anything.utils.transforms import ResizeLongestSide

from nucseg.models.layers.sam_attention import set_attn_impl
from nucseg.models.prompters.point_prompts import (check_points,
                                                   nearest_negatives)
from nucseg.models.utils.sam import SAM_PIXEL_MEAN, build_sam
from nucseg.registry import TASK_UTILS
from .candidates import InstanceCandidates
from .sam_decoding import SharedImageDecoding, logits_to_masks
from .smoothing import smooth_candidates

__all__ = [
    'PatchEmbedding', 'SAMPointMaskGenerator', 'default_points_per_batch',
    'patch_starts', 'merge_overlapping_candidates'
]

#: Prompts decoded at once when ``points_per_batch`` is not given (see
#: :func:`default_points_per_batch`).
CPU_POINTS_PER_BATCH = 1
GPU_POINTS_PER_BATCH = 64


def default_points_per_batch(device: Union[str, torch.device]) -> int:
    """Prompts per decoder batch: one on CPU, many on accelerators.

    On CPU the decoder is compute-bound and its cost grows linearly with
    the batch (every prompt has its own ``64 x 64 x 256`` image tokens and
    ``256 x 256 x 32`` upscaled features, ~14 MB of activations), so
    batching saves only per-call overhead while the larger working set
    leaves the caches: ``tools/analysis_tools/benchmark_sam_prompts.py``
    measured batch 1 as fast as or faster than 4 to 32 (and batch 1 of the
    ``'exact'`` decoder is bit-identical to ``SamPredictor.predict``). On
    a GPU large batches fill the device.
    """
    return (CPU_POINTS_PER_BATCH if torch.device(device).type == 'cpu' else
            GPU_POINTS_PER_BATCH)


def patch_starts(length: int, patch: int, stride: int) -> List[int]:
    """Patch offsets ``0, stride, ...`` plus a last one flush with the end.

    Args:
        length (int): Image side (``>= patch``; pad smaller images).
        patch (int): Patch side.
        stride (int): Step between patches (``>= 1``).

    Returns:
        list[int]: Sorted unique offsets covering ``[0, length)``.
    """
    if length < patch:
        raise ValueError(f'image side {length} is smaller than the patch '
                         f'{patch}; pad it first')
    starts = list(range(0, length - patch + 1, stride))
    if starts[-1] != length - patch:
        starts.append(length - patch)
    return starts


def merge_overlapping_candidates(cands: InstanceCandidates,
                                 iou_thresh: float = 0.8
                                 ) -> InstanceCandidates:
    """Merge groups of candidates linked by mask IoU > ``iou_thresh``.

    Groups are the connected components of the "IoU > thresh" graph; each
    keeps its highest-score member (lower index on ties). The result keeps
    the input order of the representatives.
    """
    n = len(cands)
    if n < 2:
        return cands
    i, j, iou = cands.pairwise_iou()
    link = iou > iou_thresh
    graph = sparse.coo_matrix(
        (np.ones(int(link.sum())), (i[link], j[link])), shape=(n, n))
    _, comp = connected_components(graph, directed=False)
    # Best member per component: sort by (component, -score, index).
    order = np.lexsort((np.arange(n), -cands.scores, comp))
    first = np.ones(n, bool)
    first[1:] = comp[order][1:] != comp[order][:-1]
    return cands.select(np.sort(order[first]))


@dataclass
class PatchEmbedding:
    """SAM image embedding of one patch.

    Args:
        features (torch.Tensor): ``1xCxhxw`` image embedding.
        input_size (tuple[int, int]): Size of the resized patch fed to the
            encoder (before SAM's padding).
        original_size (tuple[int, int]): ``(H, W)`` of the patch.
        shared (SharedImageDecoding, optional): Prompt-independent decoder
            work, filled on first use.
    """

    features: torch.Tensor
    input_size: Tuple[int, int]
    original_size: Tuple[int, int]
    shared: Optional['SharedImageDecoding'] = field(default=None,
                                                    repr=False)


@TASK_UTILS.register_module()
class SAMPointMaskGenerator:
    """Instance-mask candidates from SAM and positive/negative points.

    Args:
        sam (Sam, optional): A ``segment_anything`` model to use (its
            device is kept). Otherwise one is built with
            :func:`nucseg.models.utils.sam.build_sam` from ``arch``,
            ``checkpoint`` and ``image_size``.
        arch (str): ``vit_b``, ``vit_l``, ``vit_h`` or ``tiny``.
        checkpoint (str, optional): Official SAM checkpoint (random weights
            without one, with a warning except for ``tiny``).
        image_size (int): SAM input side (1024 for the official weights;
            smaller for tests).
        device (str, optional): Device of a built model (default: CUDA if
            available, else CPU).
        patch_size (int): Patch side in image pixels (512).
        overlap (float): Patch overlap ratio in ``[0, 1)`` (0.5).
        num_neg (int): Nearest negatives per positive prompt (2).
        points_per_batch (int, optional): Prompts per decoder call
            (default :func:`default_points_per_batch`).
        multimask_output (bool): Let SAM predict three masks per prompt and
            keep the one with the best predicted IoU (default False).
        min_area (int): Smallest kept mask (50 px).
        max_area (int): Largest kept mask (20000 px).
        merge_iou (float, optional): Merge masks with IoU above this (0.8);
            ``None`` disables merging.
        smooth_radius (int, optional): Keep the largest piece of a
            fragmented mask, close / open it with a disk of this radius and
            fill its holes (official code: 2); ``None`` disables.
        patch_nms (dict, optional): ``ContainmentAwareSoftNMS`` config
            (``TASK_UTILS``) run on each patch's masks after merging, with
            the patch's H map (official code); ``None`` disables.
        border_margin (int, optional): Drop masks within this many pixels
            of an inner patch border (official code: 5); ``None`` disables.
        max_neg_inside (int, optional): Drop masks containing more negative
            points of the patch (official code: 3); ``None`` disables.
        exact_upsample (bool): Use SAM's full-size
            :meth:`Sam.postprocess_masks` instead of windows.
        decoder (str): ``'sam'`` calls SAM's :class:`MaskDecoder` for
            every batch; ``'exact'`` does its prompt-independent work once
            per patch (:class:`SharedImageDecoding`, bit-identical logits
            for batches of one prompt); ``'fast'`` (default) also computes
            the output upscaling as matrix products for the chosen mask
            only (same maths, different float rounding).
        attn_impl (str): Attention of the image encoder when the generator
            builds SAM itself (``'native'``, ``'sdpa'``, ``'sdpa_fold'``;
            see :func:`~nucseg.models.layers.set_attn_impl`).
    """

    def __init__(self,
                 sam: Optional[Sam] = None,
                 arch: str = 'vit_b',
                 checkpoint: Optional[str] = None,
                 image_size: int = 1024,
                 device: Optional[str] = None,
                 patch_size: int = 512,
                 overlap: float = 0.5,
                 num_neg: int = 2,
                 points_per_batch: Optional[int] = None,
                 multimask_output: bool = False,
                 min_area: int = 50,
                 max_area: int = 20000,
                 merge_iou: Optional[float] = 0.8,
                 smooth_radius: Optional[int] = None,
                 patch_nms: Optional[dict] = None,
                 border_margin: Optional[int] = 5,
                 max_neg_inside: Optional[int] = 3,
                 exact_upsample: bool = False,
                 decoder: str = 'fast',
                 attn_impl: str = 'sdpa') -> None:
        if sam is None:
            if checkpoint is None and arch != 'tiny':
                print_log(
                    f'SAMPointMaskGenerator: SAM {arch} without checkpoint '
                    'has random weights', logger='current', level=30)
            sam = build_sam(arch, checkpoint, image_size)
            # Image-embedding attention (equal to SAM's within 1e-5; about
            # 1.4x faster for vit_b on CPU); injected models are used as
            # they are.
            set_attn_impl(sam.image_encoder, attn_impl)
            if device is None:
                device = 'cuda' if torch.cuda.is_available() else 'cpu'
            sam = sam.to(device)
        elif not isinstance(sam, Sam):
            raise TypeError(f'sam must be a segment_anything Sam, got '
                            f'{type(sam).__name__}')
        self.sam = sam.eval()
        if patch_size < 16:
            raise ValueError(f'patch_size must be >= 16, got {patch_size}')
        if not 0 <= overlap < 1:
            raise ValueError(f'overlap must be in [0, 1), got {overlap}')
        if num_neg < 0:
            raise ValueError(f'num_neg must be >= 0, got {num_neg}')
        if points_per_batch is not None and points_per_batch < 1:
            raise ValueError(f'points_per_batch must be >= 1, got '
                             f'{points_per_batch}')
        if min_area > max_area:
            raise ValueError(f'min_area ({min_area}) > max_area '
                             f'({max_area})')
        self.patch_size = int(patch_size)
        self.stride = max(1, int(round(patch_size * (1 - overlap))))
        self.num_neg = int(num_neg)
        self.points_per_batch = (
            int(points_per_batch) if points_per_batch is not None else
            default_points_per_batch(self.device))
        self.multimask_output = bool(multimask_output)
        self.min_area = int(min_area)
        self.max_area = int(max_area)
        self.merge_iou = merge_iou
        if smooth_radius is not None and smooth_radius < 0:
            raise ValueError(f'smooth_radius must be None or >= 0, got '
                             f'{smooth_radius}')
        self.smooth_radius = smooth_radius
        self.patch_nms = (TASK_UTILS.build(patch_nms)
                          if patch_nms is not None else None)
        if getattr(self.patch_nms, 'return_label_map', False):
            raise ValueError('patch_nms must return candidates, not a label '
                             'map (return_label_map=False)')
        self.border_margin = border_margin
        self.max_neg_inside = max_neg_inside
        self.exact_upsample = bool(exact_upsample)
        if decoder not in ('fast', 'exact', 'sam'):
            raise ValueError(f"decoder must be 'fast', 'exact' or 'sam', "
                             f'got {decoder!r}')
        self.decoder = decoder
        self.transform = ResizeLongestSide(self.sam.image_encoder.img_size)
        self.pad_color = np.array([round(v) for v in SAM_PIXEL_MEAN],
                                  np.uint8)

    @property
    def device(self) -> torch.device:
        return self.sam.device

    # ------------------------------------------------------------------
    # SAM steps
    @torch.inference_mode()
    def embed(self, patch: np.ndarray) -> PatchEmbedding:
        """Image embedding of one ``hxwx3`` uint8 RGB patch.

        Same steps as :meth:`SamPredictor.set_image`.
        """
        resized = self.transform.apply_image(patch)
        x = torch.as_tensor(resized, device=self.device)
        x = x.permute(2, 0, 1).contiguous()[None]
        features = self.sam.image_encoder(self.sam.preprocess(x))
        return PatchEmbedding(features, tuple(x.shape[-2:]),
                              tuple(patch.shape[:2]))

    @torch.inference_mode()
    def decode(self, emb: PatchEmbedding, coords: np.ndarray,
               labels: np.ndarray) -> Tuple[torch.Tensor, torch.Tensor]:
        """Low-resolution logits and predicted IoU of prompts.

        Args:
            emb (PatchEmbedding): The patch's embedding.
            coords (np.ndarray): ``(B, K, 2)`` point prompts ``(x, y)`` in
                patch pixels.
            labels (np.ndarray): ``(B, K)`` labels (1 positive, 0
                negative).

        Returns:
            tuple[torch.Tensor, torch.Tensor]: ``(B, 1, h, w)`` logits (the
            best of three with ``multimask_output``) and ``(B,)`` scores.
        """
        pts = self.transform.apply_coords(coords, emb.original_size)
        pts = torch.as_tensor(pts, dtype=torch.float, device=self.device)
        lab = torch.as_tensor(labels, dtype=torch.int, device=self.device)
        sparse_emb, dense_emb = self.sam.prompt_encoder(
            points=(pts, lab), boxes=None, masks=None)
        if self.decoder != 'sam':
            exact = self.decoder == 'exact'
            if emb.shared is None or emb.shared.exact != exact:
                emb.shared = SharedImageDecoding(self.sam, emb.features,
                                                 exact)
            return emb.shared(sparse_emb, self.multimask_output)
        low, iou = self.sam.mask_decoder(
            image_embeddings=emb.features,
            image_pe=self.sam.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse_emb,
            dense_prompt_embeddings=dense_emb,
            multimask_output=self.multimask_output)
        if self.multimask_output:
            best = iou.argmax(1)
            rows = torch.arange(len(best), device=iou.device)
            low, iou = low[rows, best][:, None], iou[rows, best]
        else:
            iou = iou[:, 0]
        return low, iou

    @torch.inference_mode()
    def logits_to_masks(self, low: torch.Tensor, emb: PatchEmbedding
                        ) -> Tuple[np.ndarray, List[np.ndarray]]:
        """Masks of low-resolution logits (see :func:`logits_to_masks`)."""
        return logits_to_masks(self.sam, low, emb.input_size,
                               emb.original_size, self.exact_upsample)

    def build_prompts(self, pos: np.ndarray, neg: np.ndarray
                      ) -> Tuple[np.ndarray, np.ndarray]:
        """Each positive with its ``num_neg`` nearest negatives.

        Returns:
            tuple[np.ndarray, np.ndarray]: ``(P, 1 + k, 2)`` float64
            coordinates and ``(P, 1 + k)`` int64 labels ``1, 0, ...``.
        """
        _, nn_idx = nearest_negatives(pos, neg, self.num_neg)
        k = nn_idx.shape[1]
        coords = np.concatenate(
            [pos[:, None, :].astype(np.float64),
             neg[nn_idx].reshape(len(pos), k, 2).astype(np.float64)], 1)
        labels = np.zeros((len(pos), 1 + k), np.int64)
        labels[:, 0] = 1
        return coords, labels

    def predict_prompts(self, emb: PatchEmbedding, coords: np.ndarray,
                        labels: np.ndarray) -> InstanceCandidates:
        """Raw masks (no filter) of prompts on one patch.

        Args:
            emb (PatchEmbedding): The patch's embedding.
            coords (np.ndarray): ``(P, K, 2)`` prompts in patch pixels.
            labels (np.ndarray): ``(P, K)`` labels.

        Returns:
            InstanceCandidates: ``P`` candidates (maybe empty) in patch
            coordinates, scores = predicted IoU.
        """
        boxes, crops, scores = [], [], []
        bs = self.points_per_batch
        for s in range(0, len(coords), bs):
            low, iou = self.decode(emb, coords[s:s + bs], labels[s:s + bs])
            b, c = self.logits_to_masks(low, emb)
            boxes.append(b)
            crops.extend(c)
            scores.append(iou.float().cpu().numpy())
        if not crops:
            return InstanceCandidates.empty(emb.original_size)
        return InstanceCandidates(
            np.concatenate(boxes), crops, np.concatenate(scores),
            emb.original_size)

    # ------------------------------------------------------------------
    # whole image
    def _keep(self, cands: InstanceCandidates, left: int, top: int,
              image_hw: Tuple[int, int], neg: np.ndarray) -> np.ndarray:
        """Filters of one patch's candidates (image coordinates)."""
        areas = cands.areas
        keep = (areas >= max(self.min_area, 1)) & (areas <= self.max_area)
        h, w = image_hw
        p = self.patch_size
        if self.border_margin is not None and len(cands):
            m = self.border_margin
            b = cands.boxes
            cut = np.zeros(len(cands), bool)
            if left > 0:
                cut |= b[:, 0] - left <= m
            if top > 0:
                cut |= b[:, 1] - top <= m
            if left + p < w:
                cut |= b[:, 2] - 1 - left >= p - 1 - m
            if top + p < h:
                cut |= b[:, 3] - 1 - top >= p - 1 - m
            keep &= ~cut
        if self.max_neg_inside is not None and len(neg):
            npix = np.rint(neg).astype(np.int64)
            for k in np.flatnonzero(keep):
                x0, y0, x1, y1 = cands.boxes[k]
                sel = ((npix[:, 0] >= x0) & (npix[:, 0] < x1)
                       & (npix[:, 1] >= y0) & (npix[:, 1] < y1))
                if sel.sum() <= self.max_neg_inside:
                    continue
                q = npix[sel]
                inside = cands.crops[k][q[:, 1] - y0, q[:, 0] - x0].sum()
                if inside > self.max_neg_inside:
                    keep[k] = False
        return keep

    def suppress_in_patch(self, cands: InstanceCandidates,
                          image: np.ndarray, left: int,
                          top: int) -> InstanceCandidates:
        """Merge and soft-NMS one patch's candidates (official order).

        Args:
            cands (InstanceCandidates): The patch's filtered candidates in
                image coordinates.
            image (np.ndarray): ``HxWx3`` uint8 RGB image.
            left, top (int): The patch's origin.

        Returns:
            InstanceCandidates: The kept candidates (image coordinates)
            with the NMS's scores.
        """
        h, w = image.shape[:2]
        ph, pw = min(self.patch_size, h - top), min(self.patch_size, w - left)
        # Every candidate lies in the patch: a lossless move to patch
        # coordinates, where the NMS reads the patch's own H map.
        local = cands.translate((-left, -top), (ph, pw))
        if self.merge_iou is not None:
            local = merge_overlapping_candidates(local, self.merge_iou)
        kept = self.patch_nms(
            local, image=image[top:top + ph, left:left + pw])
        return kept.translate((left, top), (h, w))

    def __call__(self,
                 image: np.ndarray,
                 pos_points: np.ndarray,
                 neg_points: Optional[np.ndarray] = None,
                 fg_mask: Optional[np.ndarray] = None,
                 h_map: Optional[np.ndarray] = None) -> InstanceCandidates:
        """Mask candidates of one image.

        Args:
            image (np.ndarray): ``HxWx3`` uint8 RGB image.
            pos_points (np.ndarray): ``(N, 2)`` positive points ``(x, y)``.
            neg_points (np.ndarray, optional): ``(M, 2)`` negative points.
            fg_mask (np.ndarray, optional): Unused; accepted so that the
                generator is interchangeable with
                :class:`WatershedMaskGenerator`.
            h_map (np.ndarray, optional): Unused (the H response enters in
                the soft NMS).

        Returns:
            InstanceCandidates: Filtered and merged candidates, scores =
            SAM's predicted IoU (the patch NMS's scores with
            ``patch_nms``).
        """
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f'image must be HxWx3 uint8 RGB, got '
                             f'{image.shape} {image.dtype}')
        pos = check_points(pos_points, 'pos_points', np.float64)
        neg = check_points(neg_points, 'neg_points', np.float64)
        h, w = image.shape[:2]
        p = self.patch_size
        ph, pw = max(h, p), max(w, p)
        if (ph, pw) != (h, w):
            padded = np.empty((ph, pw, 3), np.uint8)
            padded[:] = self.pad_color
            padded[:h, :w] = image
        else:
            padded = image
        parts = []
        for top in patch_starts(ph, p, self.stride):
            for left in patch_starts(pw, p, self.stride):
                in_pos = ((pos[:, 0] >= left) & (pos[:, 0] < left + p)
                          & (pos[:, 1] >= top) & (pos[:, 1] < top + p))
                if not in_pos.any():
                    continue
                in_neg = ((neg[:, 0] >= left) & (neg[:, 0] < left + p)
                          & (neg[:, 1] >= top) & (neg[:, 1] < top + p))
                off = np.array([left, top], np.float64)
                pos_l, neg_l = pos[in_pos] - off, neg[in_neg] - off
                emb = self.embed(padded[top:top + p, left:left + p])
                coords, labels = self.build_prompts(pos_l, neg_l)
                cands = self.predict_prompts(emb, coords, labels)
                if self.smooth_radius is not None:
                    cands = smooth_candidates(cands, self.smooth_radius)
                cands = cands.translate((left, top), (h, w))
                keep = self._keep(cands, left, top, (h, w), neg[in_neg])
                cands = cands.select(keep)
                if self.patch_nms is not None and len(cands):
                    cands = self.suppress_in_patch(cands, image, left, top)
                parts.append(cands)
        cands = InstanceCandidates.concatenate(parts, (h, w))
        if self.merge_iou is not None:
            cands = merge_overlapping_candidates(cands, self.merge_iou)
        return cands
