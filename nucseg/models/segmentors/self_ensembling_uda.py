"""Self-ensembling UDA for cell segmentation (Li et al., COMPAY 2021).

"Unsupervised Domain Adaptation for Cell Segmentation with
Self-Ensembling": a U-Net segmenter ``S`` trained on a labelled source
domain and adapted to an unlabelled target domain with

* Eq. 1-5, ``L_seg = L_dice + L_em + lambda(E) L_mse``: Dice and entropy
  minimisation on the source, and a self-ensembling consistency between
  the prediction of a rotated/flipped input and the rotated/flipped
  prediction of the input (teacher = the same weights, no gradient);
* Eq. 6-7, an output-space discriminator ``D`` (AdaptSegNet) telling
  source from target predictions, and the adversarial term
  ``lambda_adv L_adv`` on target predictions;
* Eq. 8, a reconstructor ``R`` rebuilding the target image from ``S``'s
  target prediction (``lambda_recons L_recons``, its gradient reaching
  ``S``);
* Eq. 10-13, a fully connected CRF on the predictions at test time.

No official code exists; the training order follows the ancestor
CellSegUDA (github minhazul-haq/CellSegDA, ``train_cellseg_uda.py``).
"""
import math
from typing import Dict, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from mmengine.optim import OptimWrapperDict
from mmengine.structures import PixelData
from mmseg.utils import OptSampleList, SampleList
from torch import Tensor

from nucseg.models.base_models import MultiOptimModel
from nucseg.models.losses.self_ensembling import (DIHEDRAL_OPS,
                                                  apply_dihedral,
                                                  binary_entropy_loss,
                                                  consistency_loss,
                                                  sample_dihedral_ops)
from nucseg.models.postprocessors import add_instance_predictions
from nucseg.registry import MODELS, TASK_UTILS
from nucseg.utils.config_check import check_keys

__all__ = ['SelfEnsemblingUDA']

LOSS_WEIGHT_KEYS = ('em', 'adv', 'recon')
DOMAINS = ('source', 'target')
TEST_CFG_KEYS = ('threshold', )
#: Discriminator targets (Eq. 7: z = 1 for source, 0 for target).
SOURCE_LABEL, TARGET_LABEL = 1.0, 0.0


def _default_data_preprocessor() -> dict:
    return dict(
        type='SegDataPreProcessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=False,
        pad_val=0,
        seg_pad_val=255,
        # Pad the images of a batch to the largest one (S pads to its own
        # divisor).
        size_divisor=1)


def _domains(value: Sequence[str], name: str) -> Tuple[str, ...]:
    value = (value, ) if isinstance(value, str) else tuple(value)
    bad = [v for v in value if v not in DOMAINS]
    if bad:
        raise ValueError(f'SelfEnsemblingUDA.{name} must be a subset of '
                         f'{DOMAINS}, got {list(value)}')
    return value


@MODELS.register_module()
class SelfEnsemblingUDA(MultiOptimModel):
    """Segmenter + output-space discriminator + reconstructor, three Adams.

    Each training iteration takes a batch of source (``is_primary``) and
    target images (``MultiDomainDataset`` + ``MultiDomainSampler``) and, as
    CellSegUDA:

    1. one forward of ``S`` on ``[x_s, x_t, pi(x_s), pi(x_t)]`` (the
       transformed copies only while the self-ensembling weight is > 0;
       ``pi`` drawn per image from rotations by 90/180/270 degrees and
       flips);
    2. discriminator step on the *detached* predictions (Eq. 7, BCE with
       logits, source 1, target 0);
    3. segmenter step, ``D`` and ``R`` frozen (gradients pass through them
       into ``S`` only)::

           L_S = L_dice(S(x_s), y_s) + w_em L_em + lambda(E) L_mse
               + w_adv BCE(D(S(x_t)), 1) + w_recon MSE(R(S(x_t)), x_t)

    4. reconstructor step, ``w_recon MSE(R(S(x_t).detach()), x_t)``.

    Steps 3 and 4 give ``S`` and ``R`` exactly the gradients of CellSegUDA's
    single backward of ``L_S`` (``R``'s gradient does not depend on
    whether its input is detached), with separate optimizers that also
    work under AMP. The reconstructed image is the normalised input (the
    data preprocessor's output).

    The self-ensembling weight ``lambda(E)`` is :attr:`consistency_weight`,
    set before each iteration by
    :class:`~nucseg.engine.hooks.ConsistencyRampHook`.

    At test time the sigmoid probability map goes through the dense CRF
    (``crf``, appearance + smoothness kernels of Eq. 13; ``None`` skips it,
    the "w/o CRF" ablation); ``pred_sem_seg`` is the thresholded result
    (what the paper's IoU and Dice score) and ``postprocessor`` (e.g.
    ``DistanceWatershed``) turns it into ``pred_instance_map`` for AJI/PQ.

    Args:
        segmenter (dict): ``S``, ``B x 3 x H x W`` -> ``B x 1 x H x W``
            logits (e.g. :class:`~nucseg.models.backbones.PixelUNet`).
        discriminator (dict): ``D`` on ``B x 1 x H x W`` probabilities
            (:class:`~nucseg.models.discriminators.OutputSpaceDiscriminator`).
        reconstructor (dict): ``R``, ``B x 1 x H x W`` -> ``B x 3 x H x W``.
        loss_dice (dict, optional): Dice loss on source logits; default
            ``DiceFocalLoss`` with Dice only (CellSegUDA's ``1 - (2|P T| +
            1) / (|P| + |T| + 1)`` over the batch).
        loss_weights (dict, optional): ``em`` (1.0), ``adv`` (0.001),
            ``recon`` (0.01).
        self_ensembling (bool): Use the consistency term (False: the "w/o
            self-ensembling" ablation).
        consistency_domains (Sequence[str]): Images the consistency term
            is applied to (``'source'``, ``'target'``).
        consistency_ops (Sequence[str]): Transformations ``pi``.
        entropy_domains (Sequence[str]): Predictions whose entropy is
            minimised (the paper: ``'source'``).
        source_only (bool): Ignore the target images (no ``D``/``R``
            steps, no target terms): the source-only baseline.
        crf (dict, optional): ``DenseCRF`` config (``TASK_UTILS``).
        postprocessor (dict, optional): Instance post-processor (default
            ``DistanceWatershed``).
        test_cfg (dict, optional): ``threshold`` (0.5) of the foreground.
        data_preprocessor (dict, optional): Default ``SegDataPreProcessor``
            with ImageNet mean/std on RGB.
        step_intervals, step_begins (dict, optional): See
            :class:`~nucseg.models.base_models.MultiOptimModel`.
        init_cfg (dict, optional): mmengine init config.
    """

    optim_keys = ('segmenter', 'discriminator', 'reconstructor')

    def __init__(self,
                 segmenter: dict,
                 discriminator: dict,
                 reconstructor: dict,
                 loss_dice: Optional[dict] = None,
                 loss_weights: Optional[dict] = None,
                 self_ensembling: bool = True,
                 consistency_domains: Sequence[str] = DOMAINS,
                 consistency_ops: Sequence[str] = DIHEDRAL_OPS,
                 entropy_domains: Sequence[str] = ('source', ),
                 source_only: bool = False,
                 crf: Optional[dict] = None,
                 postprocessor: Optional[dict] = None,
                 test_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 step_intervals: Optional[dict] = None,
                 step_begins: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(
            data_preprocessor=data_preprocessor
            or _default_data_preprocessor(),
            step_intervals=step_intervals,
            step_begins=step_begins,
            init_cfg=init_cfg)
        check_keys(loss_weights, LOSS_WEIGHT_KEYS,
                   'SelfEnsemblingUDA.loss_weights')
        weights = dict(em=1.0, adv=0.001, recon=0.01)
        weights.update(loss_weights or {})
        for key, value in weights.items():
            if not (isinstance(value, (int, float))
                    and math.isfinite(value) and value >= 0):
                raise ValueError(
                    f'SelfEnsemblingUDA.loss_weights[{key!r}] must be a '
                    f'finite number >= 0, got {value!r}')
        self.loss_weights = {k: float(v) for k, v in weights.items()}
        check_keys(test_cfg, TEST_CFG_KEYS, 'SelfEnsemblingUDA.test_cfg')
        self.test_cfg = dict(threshold=0.5)
        self.test_cfg.update(test_cfg or {})
        self.self_ensembling = bool(self_ensembling)
        self.consistency_domains = _domains(consistency_domains,
                                            'consistency_domains')
        # Validated (raises on unknown names) by drawing once.
        sample_dihedral_ops(1, True, consistency_ops)
        self.consistency_ops = tuple(consistency_ops)
        self.entropy_domains = _domains(entropy_domains, 'entropy_domains')
        self.source_only = bool(source_only)

        self.segmenter = MODELS.build(segmenter)
        self.discriminator = MODELS.build(discriminator)
        self.reconstructor = MODELS.build(reconstructor)
        self.loss_dice = MODELS.build(loss_dice or dict(
            type='DiceFocalLoss', dice_weight=1.0, focal_weight=0.0,
            smooth=1.0, loss_name='loss_dice'))
        self.crf = TASK_UTILS.build(crf) if crf is not None else None
        self.postprocessor = TASK_UTILS.build(
            postprocessor or dict(type='DistanceWatershed'))
        #: lambda(E) of Eq. 4, set by ConsistencyRampHook (None: unset).
        self.consistency_weight: Optional[float] = None

    # ------------------------------------------------------------------
    # what an iteration uses
    # ------------------------------------------------------------------
    @property
    def uses_adversarial(self) -> bool:
        return not self.source_only and self.loss_weights['adv'] > 0

    @property
    def uses_reconstruction(self) -> bool:
        return not self.source_only and self.loss_weights['recon'] > 0

    def current_consistency_weight(self) -> float:
        """``lambda(E)`` for this iteration (0 without self-ensembling).

        Raises:
            RuntimeError: Self-ensembling is on but no hook set the weight.
        """
        if not self.self_ensembling:
            return 0.0
        if self.consistency_weight is None:
            raise RuntimeError(
                'SelfEnsemblingUDA: consistency_weight (lambda(E) of Eq. 4) '
                "was never set; add dict(type='ConsistencyRampHook', "
                'peak=30) to custom_hooks, or set model.self_ensembling='
                'False')
        value = float(self.consistency_weight)
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f'SelfEnsemblingUDA: consistency_weight must be '
                             f'a finite number >= 0, got {value}')
        return value

    @staticmethod
    def split_domains(data_samples: Sequence) -> Tuple[List[int], List[int]]:
        """Indices of the source (``is_primary``) and target samples."""
        src, tgt = [], []
        for i, sample in enumerate(data_samples):
            if 'is_primary' not in sample.metainfo:
                raise KeyError(
                    f'SelfEnsemblingUDA: data sample {i} has no '
                    '`is_primary` metainfo; train with MultiDomainDataset '
                    '(source = primary domain) and MultiDomainSampler')
            (src if sample.metainfo['is_primary'] else tgt).append(i)
        return src, tgt

    @staticmethod
    def source_targets(data_samples: Sequence, index: Sequence[int]
                       ) -> Tensor:
        """``B x H x W`` binary targets (255 = ignored) of the source."""
        maps = []
        for i in index:
            sample = data_samples[i]
            if 'gt_sem_seg' not in sample:
                raise KeyError(
                    f'SelfEnsemblingUDA: source sample {i} ('
                    f'{sample.metainfo.get("img_path", "?")}) has no '
                    'gt_sem_seg; put LoadInstanceAnnotations and '
                    "GenerateNucleiTarget(mode='binary') in the source "
                    'pipeline')
            seg = sample.gt_sem_seg.data[0]
            maps.append(torch.where(seg == 255, seg, (seg > 0).to(seg)))
        return torch.stack(maps)

    # ------------------------------------------------------------------
    # losses of the three steps
    # ------------------------------------------------------------------
    def forward_segmenter(self, segmenter, x_s: Tensor,
                          x_t: Optional[Tensor],
                          with_consistency: bool) -> Dict:
        """One forward of ``S`` on source, target and transformed images.

        Args:
            segmenter: ``S`` (the DDP wrapper inside the segmenter step).
            x_s (Tensor): ``Bs x 3 x H x W`` source images.
            x_t (Tensor, optional): ``Bt x 3 x H x W`` target images.
            with_consistency (bool): Also predict transformed copies of the
                images of :attr:`consistency_domains`.

        Returns:
            dict: ``source_logits``, ``source`` and ``target``
            (probabilities, ``target`` None without ``x_t``) and, with
            consistency, ``student`` / ``teacher`` probabilities and the
            transformations ``ops``.
        """
        parts = [x_s] + ([x_t] if x_t is not None else [])
        x = torch.cat(parts)
        ns, n = len(x_s), len(x)
        sel: List[int] = []
        if with_consistency:
            if 'source' in self.consistency_domains:
                sel += list(range(ns))
            if 'target' in self.consistency_domains and x_t is not None:
                sel += list(range(ns, n))
        ops: List[str] = []
        if sel:
            h, w = x.shape[-2:]
            ops = sample_dihedral_ops(len(sel), h == w,
                                      self.consistency_ops)
            x = torch.cat([x, apply_dihedral(x[sel], ops)])
        logits = segmenter(x)
        probs = logits.sigmoid()
        out = dict(
            source_logits=logits[:ns],
            source=probs[:ns],
            target=probs[ns:n] if x_t is not None else None)
        if sel:
            out.update(student=probs[n:], teacher=probs[sel], ops=ops)
        return out

    def segmenter_losses(self, pred: Dict, y_s: Tensor,
                         x_t: Optional[Tensor],
                         consistency_weight: float) -> Dict[str, Tensor]:
        """Terms of ``S``'s step (``D`` and ``R`` frozen).

        Args:
            pred (dict): Output of :meth:`forward_segmenter`.
            y_s (Tensor): ``Bs x H x W`` source targets.
            x_t (Tensor, optional): Target images (reconstruction target).
            consistency_weight (float): ``lambda(E)``.

        Returns:
            dict[str, Tensor]: ``loss_dice`` and, when used, ``loss_em``,
            ``loss_consistency``, ``loss_adv``, ``loss_recon`` (each
            already weighted).
        """
        w = self.loss_weights
        losses = {self.loss_dice.loss_name:
                  self.loss_dice(pred['source_logits'], y_s)}
        if w['em'] > 0:
            maps = [pred[d] for d in self.entropy_domains
                    if pred[d] is not None]
            losses['loss_em'] = w['em'] * binary_entropy_loss(
                torch.cat([m.flatten() for m in maps]))
        if consistency_weight > 0 and 'ops' in pred:
            losses['loss_consistency'] = consistency_weight * \
                consistency_loss(pred['student'], pred['teacher'],
                                 pred['ops'])
        if self.uses_adversarial and pred['target'] is not None:
            with self.frozen('discriminator') as disc:
                d_t = disc(pred['target'])
            losses['loss_adv'] = w['adv'] * \
                F.binary_cross_entropy_with_logits(
                    d_t, torch.full_like(d_t, SOURCE_LABEL))
        if self.uses_reconstruction and pred['target'] is not None:
            with self.frozen('reconstructor') as rec:
                recon = rec(pred['target'])
            losses['loss_recon'] = w['recon'] * F.mse_loss(recon, x_t)
        return losses

    def discriminator_losses(self, p_s: Tensor,
                             p_t: Tensor) -> Dict[str, Tensor]:
        """Eq. 7 on detached source / target probabilities."""
        logits = self.discriminator(torch.cat([p_s.detach(), p_t.detach()]))
        ns = len(p_s)
        return dict(
            loss_dis_source=F.binary_cross_entropy_with_logits(
                logits[:ns], torch.full_like(logits[:ns], SOURCE_LABEL)),
            loss_dis_target=F.binary_cross_entropy_with_logits(
                logits[ns:], torch.full_like(logits[ns:], TARGET_LABEL)))

    def reconstructor_losses(self, p_t: Tensor,
                             x_t: Tensor) -> Dict[str, Tensor]:
        """Eq. 8 for ``R``'s own step (input detached from ``S``)."""
        recon = self.reconstructor(p_t.detach())
        return dict(loss_reconstructor=self.loss_weights['recon'] *
                    F.mse_loss(recon, x_t))

    def train_step(self, data: Union[dict, tuple, list],
                   optim_wrapper: OptimWrapperDict) -> Dict[str, Tensor]:
        """D step, S step, R step (see the class doc).

        Returns:
            dict[str, Tensor]: Every loss term, the step totals
            ``loss_segmenter`` / ``loss_discriminator`` /
            ``loss_reconstructor`` (of the steps taken) and ``loss``.
        """
        self.check_optim_wrapper(optim_wrapper)
        data = self.data_preprocessor(data, True)
        inputs, samples = data['inputs'], data['data_samples']
        src, tgt = self.split_domains(samples)
        if not src:
            raise ValueError('SelfEnsemblingUDA: a training batch has no '
                             'source (labelled, is_primary) image; check '
                             'MultiDomainSampler.domain_ratio')
        if not tgt and not self.source_only:
            raise ValueError('SelfEnsemblingUDA: a training batch has no '
                             'target image; check MultiDomainSampler.'
                             'domain_ratio (or set source_only=True)')
        x_s = inputs[src]
        x_t = None if self.source_only else inputs[tgt]
        y_s = self.source_targets(samples, src)
        weight = self.current_consistency_weight()
        logs: List[Dict[str, Tensor]] = []
        pred: Dict = {}

        def discriminator_step() -> None:
            if self.uses_adversarial and self.should_step('discriminator'):
                logs.append(self.update(
                    optim_wrapper, 'discriminator',
                    lambda: self.discriminator_losses(pred['source'],
                                                      pred['target'])))

        if self.should_step('segmenter'):

            def segmenter_step() -> Dict[str, Tensor]:
                pred.update(self.forward_segmenter(self.segmenter, x_s, x_t,
                                                   weight > 0))
                # D learns from this forward's detached predictions before
                # S meets the updated D (CellSegUDA's order).
                discriminator_step()
                return self.segmenter_losses(pred, y_s, x_t, weight)

            logs.append(self.update(optim_wrapper, 'segmenter',
                                    segmenter_step))
        else:
            with torch.no_grad():
                pred.update(self.forward_segmenter(
                    self.unwrapped('segmenter'), x_s, x_t, False))
            discriminator_step()
        if self.uses_reconstruction and self.should_step('reconstructor'):
            logs.append(self.update(
                optim_wrapper, 'reconstructor',
                lambda: self.reconstructor_losses(pred['target'], x_t)))
        return self.merge_log_vars(*logs)

    # ------------------------------------------------------------------
    # inference
    # ------------------------------------------------------------------
    def _to_uint8(self, x: Tensor) -> np.ndarray:
        """``3 x H x W`` preprocessed image -> ``H x W x 3`` uint8 RGB."""
        dp = self.data_preprocessor
        if getattr(dp, '_enable_normalize', False):
            x = x * dp.std + dp.mean
        arr = x.detach().float().permute(1, 2, 0).cpu().numpy()
        return np.clip(np.rint(arr), 0, 255).astype(np.uint8)

    def refine(self, image: np.ndarray, prob: Tensor) -> Tensor:
        """Dense-CRF refinement of one foreground probability map.

        Args:
            image (np.ndarray): ``H x W x 3`` uint8 RGB.
            prob (Tensor): ``H x W`` foreground probabilities.

        Returns:
            Tensor: ``H x W`` refined foreground probabilities (``prob``
            itself without a CRF).
        """
        if self.crf is None:
            return prob
        p = prob.detach().float().cpu().numpy()
        q = self.crf(image, np.stack([1 - p, p]))[1]
        return torch.from_numpy(np.ascontiguousarray(q)).to(prob)

    def predict(self,
                inputs: Tensor,
                data_samples: OptSampleList = None) -> SampleList:
        """Probabilities -> CRF -> ``pred_sem_seg`` and ``pred_instance_map``.

        Each sample also gets ``seg_logits``: the ``1 x H x W`` (refined)
        foreground probability.
        """
        from nucseg.structures import NucleiDataSample
        if data_samples is None:
            data_samples = [NucleiDataSample() for _ in range(len(inputs))]
        probs = self.unwrapped('segmenter')(inputs).sigmoid()
        for i, sample in enumerate(data_samples):
            h, w = sample.metainfo.get('img_shape', inputs.shape[-2:])[:2]
            prob = probs[i, 0, :h, :w]
            image = None
            if self.crf is not None:
                image = self._to_uint8(inputs[i, :, :h, :w])
            ori = tuple(sample.metainfo.get('ori_shape', (h, w))[:2])
            if ori != (h, w):
                prob = F.interpolate(prob[None, None], size=ori,
                                     mode='bilinear',
                                     align_corners=False)[0, 0]
                if image is not None:
                    image = cv2.resize(image, (ori[1], ori[0]),
                                       interpolation=cv2.INTER_LINEAR)
            if image is not None:
                prob = self.refine(image, prob)
            sample.seg_logits = PixelData(data=prob[None])
            sample.pred_sem_seg = PixelData(
                data=(prob > self.test_cfg['threshold']).long()[None])
        return add_instance_predictions(data_samples, self.postprocessor)

    def forward(self,
                inputs: Tensor,
                data_samples: OptSampleList = None,
                mode: str = 'tensor'):
        """``'tensor'``: ``S``'s logits; ``'predict'``: :meth:`predict`.

        Raises:
            RuntimeError: ``mode='loss'`` (losses live in
                :meth:`train_step`).
        """
        if mode == 'loss':
            raise self._loss_mode_error()
        if mode == 'tensor':
            return self.unwrapped('segmenter')(inputs)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        raise ValueError(f"unknown mode {mode!r}; expected 'tensor' or "
                         "'predict'")
