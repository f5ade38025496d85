"""PDAM: Panoptic Domain Adaptive Mask R-CNN (Liu et al., CVPR 2020).

mmdet 3.3's Mask R-CNN with three domain discriminators behind gradient
reversal (image, semantic and instance level, Fig. 3), a Panoptic-FPN
semantic branch, and task re-weighting (Eq. 3) of the RPN, semantic and
detector losses. Trained on batches of one (synthesised, labelled) source
image and one (unlabelled) target image.
"""
import contextlib
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from mmdet.models.detectors import MaskRCNN
from mmdet.structures.bbox import bbox2roi
from mmengine.structures import InstanceData, PixelData
from torch import Tensor, nn

from nucseg.models.layers.grl import grl
from nucseg.registry import MODELS
from nucseg.utils.config_check import check_keys
from .task_reweight import source_probability, task_reweight

__all__ = ['PDAM', 'paint_instance_map']

MMDET_PARTS = ('backbone', 'neck', 'rpn_head', 'roi_head', 'semantic_head',
               'data_preprocessor')
REWEIGHT_KEYS = ('enabled', 'beta', 'clamp', 'both_channels')
PAINT_KEYS = ('score_thr', 'max_overlap')
TARGET_ROIS = ('proposals', 'detections')


def _mmdet_scope(cfg: Optional[dict]) -> Optional[dict]:
    """Copy of ``cfg`` built in mmdet's registry (``_scope_='mmdet'``)."""
    if cfg is None or not isinstance(cfg, dict):
        return cfg
    cfg = dict(cfg)
    cfg.setdefault('_scope_', 'mmdet')
    return cfg


def paint_instance_map(masks: Tensor, scores: Tensor,
                       score_thr: float = 0.5,
                       max_overlap: float = 0.7) -> Tensor:
    """Instance label map from overlapping instance masks.

    As the authors' inference (``removeoverlap``): masks are visited by
    descending score; a mask whose area is covered by more than
    ``max_overlap`` by masks already painted is dropped, otherwise it
    takes its not yet painted pixels.

    Args:
        masks (Tensor): ``N x H x W`` bool masks.
        scores (Tensor): ``(N,)`` scores.
        score_thr (float): Masks scoring below it are ignored.
        max_overlap (float): Drop a mask covered above this fraction.

    Returns:
        Tensor: ``H x W`` int64 map, ids ``1..K`` by descending score.
    """
    h, w = masks.shape[-2:]
    out = torch.zeros((h, w), dtype=torch.int64, device=masks.device)
    painted = torch.zeros((h, w), dtype=torch.bool, device=masks.device)
    next_id = 1
    for i in torch.argsort(scores, descending=True).tolist():
        if scores[i] < score_thr:
            break
        mask = masks[i].bool()
        area = int(mask.sum())
        if area == 0:
            continue
        overlap = int((mask & painted).sum())
        if overlap > max_overlap * area:
            continue
        new = mask & ~painted
        out[new] = next_id
        painted |= new
        next_id += 1
    return out


@MODELS.register_module()
class PDAM(MaskRCNN):
    """Panoptic Domain Adaptive Mask R-CNN on mmdet's ``MaskRCNN``.

    Training (``loss``), with ``s`` = source and ``t`` = target samples of
    the batch (``is_primary`` True = source)::

        x = FPN(ResNet(image))                          # P2..P6, s and t
        L_rpn, proposals_s = RPN(x_s)                   # x w_img
        L_det = RoIHead(x_s, proposals_s)               # x w_ins
        L_sem = CE(up(SemHead(x_s)), fg_s)              # x w_sem
        L_img_da = CE(D_img(GRL(pool_sum(P2..P5))), domain)
        L_sem_da = CE(D_sem(GRL(entropy(softmax(up(SemHead(x)))))), domain)
        L_ins_da = BCE(D_ins(GRL(avgpool2(mask_feat) + box_feat)), domain)
        w_* = task_reweight(p_source of D_* on the source sample)   # Eq. 3

    ``grl_lambda`` is alpha_da (Eq. 5), set every iteration by
    ``GRLLambdaHook(schedule='dann')``; as in the authors' code it scales
    the reversed gradient (``alpha_da_mode='grl'``); ``'loss'`` multiplies
    the domain losses instead (Eq. 4 read literally). Source RoIs of the
    instance level are the positive training RoIs; target RoIs are the
    highest-scoring RPN proposals (``target_rois='proposals'``) or final
    detections (``'detections'``, closer to the authors' code), repeated
    or truncated to the number of source RoIs.

    Every mmdet sub-config (``data_preprocessor``, ``backbone``, ``neck``,
    ``rpn_head``, ``roi_head``, ``semantic_head``) is built in mmdet's
    registry (``_scope_='mmdet'`` is added when missing).

    Args:
        backbone, neck, rpn_head, roi_head, train_cfg, test_cfg,
            data_preprocessor: As mmdet's ``MaskRCNN``.
        semantic_head (dict, optional): mmdet ``PanopticFPNHead`` (1 thing
            + 1 stuff class); None removes the semantic branch and its
            discriminator (ablation "w/o SEM").
        img_discriminator (dict, optional): ``PDAMImageDiscriminator``.
        sem_discriminator (dict, optional): ``PDAMSemanticDiscriminator``.
        ins_discriminator (dict, optional): ``PDAMInstanceDiscriminator``.
        img_da_levels (Sequence[int]): FPN levels pooled for the image
            level (P2-P5, the authors leave P6 out).
        reweight (dict): ``enabled`` (False = ablation "w/o TR"), ``beta``
            (2), ``clamp`` (None; the authors use ``(0.5, 1.5)``),
            ``both_channels`` (the authors' image/semantic-level softmax
            over both channels; False = the paper's p_s).
        grl_lambda (float): Initial alpha_da.
        alpha_da_mode (str): ``'grl'`` or ``'loss'``.
        target_rois (str): ``'proposals'`` or ``'detections'``.
        semantic_upsample (str): Interpolation of the stride-4 semantic
            logits to the input size (``'nearest'`` as the authors).
        paint (dict): ``score_thr`` (0.5) and ``max_overlap`` (0.7) of
            :func:`paint_instance_map` for ``pred_instance_map``.
        init_cfg (dict, optional): mmengine init config.
    """

    def __init__(self,
                 backbone: dict,
                 rpn_head: dict,
                 roi_head: dict,
                 train_cfg: dict,
                 test_cfg: dict,
                 neck: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 semantic_head: Optional[dict] = None,
                 img_discriminator: Optional[dict] = None,
                 sem_discriminator: Optional[dict] = None,
                 ins_discriminator: Optional[dict] = None,
                 img_da_levels: Sequence[int] = (0, 1, 2, 3),
                 reweight: Optional[dict] = None,
                 grl_lambda: float = 1.0,
                 alpha_da_mode: str = 'grl',
                 target_rois: str = 'proposals',
                 semantic_upsample: str = 'nearest',
                 paint: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(
            backbone=_mmdet_scope(backbone),
            neck=_mmdet_scope(neck),
            rpn_head=_mmdet_scope(rpn_head),
            roi_head=_mmdet_scope(roi_head),
            train_cfg=train_cfg,
            test_cfg=test_cfg,
            data_preprocessor=_mmdet_scope(
                data_preprocessor or dict(type='DetDataPreprocessor')),
            init_cfg=init_cfg)
        check_keys(reweight, REWEIGHT_KEYS, 'PDAM.reweight')
        check_keys(paint, PAINT_KEYS, 'PDAM.paint')
        self.reweight = dict(
            enabled=True, beta=2.0, clamp=None, both_channels=False)
        self.reweight.update(reweight or {})
        self.paint = dict(score_thr=0.5, max_overlap=0.7)
        self.paint.update(paint or {})
        if alpha_da_mode not in ('grl', 'loss'):
            raise ValueError("alpha_da_mode must be 'grl' or 'loss', got "
                             f'{alpha_da_mode!r}')
        if target_rois not in TARGET_ROIS:
            raise ValueError(f'target_rois must be one of {TARGET_ROIS}, '
                             f'got {target_rois!r}')
        if sem_discriminator is not None and semantic_head is None:
            raise ValueError('PDAM: sem_discriminator needs a semantic_head')
        self.semantic_head = MODELS.build(
            _mmdet_scope(semantic_head)) if semantic_head else None
        self.img_discriminator = MODELS.build(
            img_discriminator) if img_discriminator else None
        self.sem_discriminator = MODELS.build(
            sem_discriminator) if sem_discriminator else None
        self.ins_discriminator = MODELS.build(
            ins_discriminator) if ins_discriminator else None
        if self.ins_discriminator is not None and \
                self.roi_head.share_roi_extractor:
            raise ValueError('PDAM: the instance level needs a separate '
                             'mask_roi_extractor in roi_head')
        self.img_da_levels = tuple(img_da_levels)
        self.grl_lambda = float(grl_lambda)
        self.alpha_da_mode = alpha_da_mode
        self.target_rois = target_rois
        self.semantic_upsample = semantic_upsample

    # ------------------------------------------------------------------
    @property
    def with_domain_adaptation(self) -> bool:
        return any(d is not None for d in (self.img_discriminator,
                                           self.sem_discriminator,
                                           self.ins_discriminator))

    def _reverse(self, x: Tensor) -> Tensor:
        lambd = self.grl_lambda if self.alpha_da_mode == 'grl' else 1.0
        return grl(x, lambd)

    def _da_weight(self) -> float:
        return self.grl_lambda if self.alpha_da_mode == 'loss' else 1.0

    def _weight(self, logits: Tensor, source_label: int = 1,
                level: str = 'img') -> Tensor:
        if not self.reweight['enabled']:
            return logits.new_ones(())
        both = self.reweight['both_channels'] and level in ('img', 'sem')
        p = source_probability(logits, source_label, both)
        return task_reweight(p, self.reweight['beta'],
                             self.reweight['clamp'])

    @staticmethod
    def _split_domains(data_samples) -> Tuple[List[int], List[int]]:
        src, tgt = [], []
        for i, s in enumerate(data_samples):
            if 'is_primary' not in s.metainfo:
                raise KeyError(
                    f'PDAM: data sample {i} has no `is_primary` metainfo; '
                    'train with MultiDomainDataset (source = primary)')
            (src if s.metainfo['is_primary'] else tgt).append(i)
        return src, tgt

    @contextlib.contextmanager
    def _capture(self, **modules: nn.Module) -> Iterator[Dict[str, list]]:
        """Record ``(inputs, output)`` of modules during a block."""
        records: Dict[str, list] = {k: [] for k in modules}
        handles = [
            m.register_forward_hook(
                lambda mod, inp, out, k=k: records[k].append((inp, out)))
            for k, m in modules.items()
        ]
        try:
            yield records
        finally:
            for h in handles:
                h.remove()

    def _roi_feature_modules(self) -> Dict[str, nn.Module]:
        head = self.roi_head
        return dict(
            bbox_rois=head.bbox_roi_extractor,
            box=head.bbox_head.shared_fcs[-1],
            mask_rois=head.mask_roi_extractor,
            mask=head.mask_head.convs[-1])

    def _fused(self, box: Tensor, mask: Tensor) -> Tensor:
        return self.ins_discriminator.fuse(F.relu(box), mask)

    # ------------------------------------------------------------------
    def loss(self, batch_inputs: Tensor, batch_data_samples: list) -> dict:
        """Losses of one source + target batch (see the class doc).

        Raises:
            ValueError: The batch has no source sample, or no target sample
                while domain adaptation is on.
            KeyError: A sample lacks ``is_primary``.
        """
        src, tgt = self._split_domains(batch_data_samples)
        domains = [s.metainfo.get('domain', '?') for s in batch_data_samples]
        if not src:
            raise ValueError(
                'PDAM: the batch has no source (primary, labelled) sample '
                f'(domains {domains}); use MultiDomainSampler with a '
                'non-zero source share')
        if not tgt and self.with_domain_adaptation:
            raise ValueError(
                'PDAM: the batch has no target sample (domains '
                f'{domains}); domain adaptation needs one per batch')
        for i in src:
            if 'gt_instances' not in batch_data_samples[i]:
                raise KeyError(
                    'PDAM: source sample '
                    f"{batch_data_samples[i].metainfo.get('img_path', i)} "
                    'has no gt_instances; add GenerateInstanceTargets to '
                    'the source pipeline')
        x = self.extract_feat(batch_inputs)
        src_idx = torch.as_tensor(src, device=batch_inputs.device)
        tgt_idx = torch.as_tensor(tgt, device=batch_inputs.device)
        x_s = tuple(f[src_idx] for f in x)
        x_t = tuple(f[tgt_idx] for f in x)
        samples_s = [batch_data_samples[i] for i in src]
        samples_t = [batch_data_samples[i] for i in tgt]
        # domain label: source 1, target 0 (the authors' convention)
        dom = torch.zeros(len(batch_data_samples), dtype=torch.long,
                          device=batch_inputs.device)
        dom[src_idx] = 1
        losses: Dict[str, Tensor] = {}
        w_da = self._da_weight()

        # image level -> weight of the RPN losses
        w_img = batch_inputs.new_ones(())
        if self.img_discriminator is not None:
            feats = self.img_discriminator.pool_and_sum(
                [x[k] for k in self.img_da_levels])
            logits = self.img_discriminator(self._reverse(feats))
            target = dom.view(-1, 1, 1).expand(-1, *logits.shape[-2:])
            losses['loss_da_img'] = w_da * self._domain_ce(
                logits, target, src, tgt)
            w_img = self._weight(logits[src_idx], 1, 'img')

        # semantic level -> weight of the semantic CE
        if self.semantic_head is not None:
            seg = self.semantic_head(x)['seg_preds']
            seg = F.interpolate(seg, size=batch_inputs.shape[-2:],
                                mode=self.semantic_upsample)
            w_sem = batch_inputs.new_ones(())
            if self.sem_discriminator is not None:
                prob = seg.softmax(1)
                entropy = -prob * torch.log2(prob + 1e-30) / np.log2(
                    prob.shape[1])
                logits = self.sem_discriminator(self._reverse(entropy))
                target = dom.view(-1, 1, 1).expand(-1, *logits.shape[-2:])
                losses['loss_da_sem'] = w_da * self._domain_ce(
                    logits, target, src, tgt)
                w_sem = self._weight(logits[src_idx], 1, 'sem')
            losses['loss_sem_seg'] = w_sem * F.cross_entropy(
                seg[src_idx], self._semantic_targets(samples_s, seg),
                ignore_index=255)
            losses['weight_sem'] = w_sem

        # RPN and RoI heads on the source samples (mmdet's own losses)
        proposal_cfg = self.train_cfg.get('rpn_proposal',
                                          self.test_cfg.rpn)
        rpn_losses, rpn_results = self.rpn_head.loss_and_predict(
            x_s, samples_s, proposal_cfg=proposal_cfg)
        for key, value in rpn_losses.items():
            losses[key] = self._scaled(value, w_img)
        losses['weight_img'] = w_img

        capture = self.ins_discriminator is not None
        ctx = self._capture(**self._roi_feature_modules()) if capture \
            else contextlib.nullcontext()
        with ctx as rec:
            roi_losses = self.roi_head.loss(x_s, rpn_results, samples_s)
        w_ins = batch_inputs.new_ones(())
        if capture:
            ins_loss, w_ins = self._instance_level(rec, x_t, samples_t)
            if ins_loss is not None:
                losses['loss_da_ins'] = w_da * ins_loss
        for key, value in roi_losses.items():
            losses[key] = self._scaled(value, w_ins) if 'loss' in key \
                else value
        losses['weight_ins'] = w_ins
        return losses

    @staticmethod
    def _scaled(value, weight: Tensor):
        if isinstance(value, (list, tuple)):
            return [v * weight for v in value]
        return value * weight

    @staticmethod
    def _domain_ce(logits: Tensor, target: Tensor, src: List[int],
                   tgt: List[int]) -> Tensor:
        """Mean of the source and the target cross-entropies (the
        authors' ``LOSS_AVG``)."""
        ce = F.cross_entropy(logits, target, reduction='none')
        ce = ce.flatten(1).mean(1)
        parts = [ce[idx].mean() for idx in (src, tgt) if idx]
        return torch.stack(parts).mean()

    @staticmethod
    def _semantic_targets(samples, seg: Tensor) -> Tensor:
        """``B_s x H x W`` 0/1 nucleus targets, 255 in padding."""
        h, w = seg.shape[-2:]
        out = torch.full((len(samples), h, w), 255, dtype=torch.long,
                         device=seg.device)
        for i, s in enumerate(samples):
            if 'gt_instance_map' not in s:
                raise KeyError(
                    'PDAM: source sample '
                    f"{s.metainfo.get('img_path', i)} has no gt_instance_map"
                    ' (needed for the semantic branch)')
            inst = s.gt_instance_map.data[0]
            out[i, :inst.shape[0], :inst.shape[1]] = (inst > 0).long()
        return out

    def _instance_level(self, rec: Dict[str, list], x_t: Tuple[Tensor],
                        samples_t: list) -> Tuple[Optional[Tensor], Tensor]:
        """Instance-level domain loss and the detector-loss weight."""
        # forward-hook records: (positional inputs, output); the RoI
        # extractors are called as extractor(feats, rois)
        bbox_in = rec['bbox_rois'][0][0][1]
        box_out = rec['box'][0][1]
        mask_rois = rec['mask_rois'][0][0][1]
        mask_out = rec['mask'][0][1]
        # positives come first in each image's block of sampled RoIs
        pos = []
        for img in torch.unique(bbox_in[:, 0]).tolist():
            rows = torch.nonzero(bbox_in[:, 0] == img).flatten()
            n_pos = int((mask_rois[:, 0] == img).sum())
            pos.append(rows[:n_pos])
        pos = torch.cat(pos) if pos else bbox_in.new_zeros(0).long()
        n = len(pos)
        ones = box_out.new_ones(())
        if n == 0:
            return None, ones  # no source nucleus: nothing to align
        fused_s = self._fused(box_out[pos], mask_out)
        rois_t = self._target_rois(x_t, samples_t, n)
        if rois_t.shape[0] == 0:
            return None, ones
        with self._capture(**self._roi_feature_modules()) as rec_t:
            self.roi_head._bbox_forward(x_t, rois_t)
            self.roi_head._mask_forward(x_t, rois_t)
        fused_t = self._fused(rec_t['box'][0][1], rec_t['mask'][0][1])
        logits = self.ins_discriminator(
            self._reverse(torch.cat([fused_s, fused_t])))
        target = torch.cat([logits.new_ones(n),
                            logits.new_zeros(len(fused_t))])
        bce = F.binary_cross_entropy_with_logits(
            logits, target, reduction='none')
        loss = 0.5 * (bce[:n].mean() + bce[n:].mean())
        return loss, self._weight(logits[:n], 1, 'ins')

    def _target_rois(self, x_t: Tuple[Tensor], samples_t: list,
                     n: int) -> Tensor:
        """``n`` target RoIs (``n x 5``), top-scored, repeated if short."""
        with torch.no_grad():
            proposals = self.rpn_head.predict(x_t, samples_t, rescale=False)
            if self.target_rois == 'detections':
                metas = [s.metainfo for s in samples_t]
                proposals = self.roi_head.predict_bbox(
                    x_t, metas, proposals, self.test_cfg.rcnn,
                    rescale=False)
        boxes = []
        per_img = -(-n // max(len(proposals), 1))
        for res in proposals:  # one entry per image: bbox2roi indexes
            b = res.bboxes[torch.argsort(res.scores, descending=True)]
            if len(b):
                b = b.repeat(-(-per_img // len(b)), 1)[:per_img]
            boxes.append(b)
        return bbox2roi(boxes)[:n]

    # ------------------------------------------------------------------
    def predict(self, batch_inputs: Tensor, batch_data_samples: list,
                rescale: bool = True) -> list:
        """Mask R-CNN predictions plus ``pred_instance_map``.

        Each sample gets mmdet's ``pred_instances`` and a ``1 x H x W``
        int64 ``pred_instance_map`` at the original size, painted by
        :func:`paint_instance_map` with ``self.paint``.
        """
        for s in batch_data_samples:
            if 'scale_factor' not in s.metainfo:
                s.set_metainfo(dict(scale_factor=(1.0, 1.0)))
        samples = super().predict(batch_inputs, batch_data_samples,
                                  rescale=rescale)
        for s in samples:
            inst: InstanceData = s.pred_instances
            h, w = s.metainfo['ori_shape'][:2] if rescale else \
                s.metainfo['img_shape'][:2]
            masks = inst.masks if len(inst) else torch.zeros(
                (0, h, w), dtype=torch.bool, device=batch_inputs.device)
            label = paint_instance_map(masks, inst.scores,
                                       **self.paint) if len(inst) else \
                torch.zeros((h, w), dtype=torch.int64,
                            device=batch_inputs.device)
            s.pred_instance_map = PixelData(data=label[None])
        return samples
