"""AMA-SAM: adversarial multi-domain alignment of SAM (Sec. 3, Fig. 1)."""
from typing import Dict, List, Optional

import torch
import torch.nn.functional as F
from mmengine.config import ConfigDict
from mmseg.models.segmentors import BaseSegmentor, EncoderDecoder
from mmseg.utils import ConfigType, OptConfigType, OptSampleList, SampleList
from torch import Tensor

from nucseg.models.layers.grl import cgrl, grl
from nucseg.models.postprocessors import add_instance_predictions
from nucseg.registry import MODELS, TASK_UTILS

ALIGNMENTS = ('none', 'grl', 'cgrl')


@MODELS.register_module()
class AMASAM(EncoderDecoder):
    """Frozen SAM + adapters, CGRL alignment, SPGen prompts, HR-Decoder.

    Training (Eq. 6)::

        feat   = backbone(x)                       # B x 256 x h x w (aligned)
        coarse = prompter(feat)                    # B x 1 x 4h x 4w (SPGen)
        prompt = prompter.mask_prompt(coarse)      # dense prompt, detached
        fine   = decode_head(feat, feat, prompt)   # B x 1 x 16h x 16w (HR)
        L = L_fine(fine, y) + alpha * L_CGRL + beta * L_coarse(coarse, y)
        L_CGRL = loss_align(D(CGRL(feat)), is_primary)        # Eq. 2-3

    The segmentation losses use every sample (primary and auxiliary); the
    discriminator ``D`` sees the encoder features after the (conditional)
    gradient reversal, so a single optimiser trains it to tell the domains
    apart while the reversed gradient pushes the adapters of auxiliary
    samples towards the primary domain. ``alignment`` selects the ablations
    of Table 2: ``'none'`` (no discriminator), ``'grl'`` (plain reversal for
    every sample) or ``'cgrl'`` (Eq. 2: primary samples get no adversarial
    gradient). At inference only the primary path runs: backbone, SPGen and
    decoder; the logits are resized to the input size and the foreground
    probability goes through ``postprocessor`` for instance maps.

    Args:
        backbone (dict): e.g. ``SAMImageEncoder`` (returns a tuple whose
            first item is the ``B x 256 x h x w`` neck output).
        prompter (dict): ``SPGen`` config.
        decode_head (dict): ``HRDecoderHead`` or ``SAMMaskDecoderHead``.
        loss_fine (dict): Loss on the fine logits (Dice + focal).
        discriminator (dict, optional): ``DomainDiscriminator``; required
            unless ``alignment='none'``.
        loss_align (dict, optional): ``CGRLLoss`` config (Eq. 3).
        alignment (str): ``'none'``, ``'grl'`` or ``'cgrl'``.
        grl_lambda (float): Initial reversal strength; ``GRLLambdaHook``
            may change it during training.
        alpha (float): Weight of ``L_CGRL`` (Eq. 6).
        beta (float): Weight of ``L_coarse`` (Eq. 6).
        threshold (float): Foreground probability threshold of
            ``pred_sem_seg``.
        postprocessor (dict, optional): Instance post-processor in
            ``TASK_UTILS`` (default ``DistanceWatershed``).
        data_preprocessor, train_cfg, test_cfg, init_cfg: As in mmseg.
    """

    def __init__(self,
                 backbone: ConfigType,
                 prompter: ConfigType,
                 decode_head: ConfigType,
                 loss_fine: ConfigType = dict(type='DiceFocalLoss'),
                 discriminator: OptConfigType = None,
                 loss_align: OptConfigType = None,
                 alignment: str = 'cgrl',
                 grl_lambda: float = 1.0,
                 alpha: float = 1.0,
                 beta: float = 1.0,
                 threshold: float = 0.5,
                 postprocessor: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 init_cfg: OptConfigType = None) -> None:
        # EncoderDecoder's constructor builds mmseg decode heads; only its
        # whole/slide inference is reused, so skip to BaseSegmentor.
        BaseSegmentor.__init__(
            self, data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if alignment not in ALIGNMENTS:
            raise ValueError(f'alignment must be one of {ALIGNMENTS}, '
                             f'got {alignment!r}')
        if alignment != 'none' and (discriminator is None
                                    or loss_align is None):
            raise ValueError(f'alignment={alignment!r} needs both '
                             '`discriminator` and `loss_align`')
        self.backbone = MODELS.build(backbone)
        self.prompter = MODELS.build(prompter)
        self.decode_head = MODELS.build(decode_head)
        # mmseg's postprocess_result reads decode_head.threshold for
        # single-channel outputs.
        self.decode_head.threshold = float(threshold)
        self.loss_fine = MODELS.build(loss_fine)
        self.alignment = alignment
        if alignment != 'none':
            self.discriminator = MODELS.build(discriminator)
            self.loss_align = MODELS.build(loss_align)
        else:
            self.discriminator = None
            self.loss_align = None
        self.grl_lambda = float(grl_lambda)
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.postprocessor = TASK_UTILS.build(
            postprocessor or dict(type='DistanceWatershed'))
        self.train_cfg = train_cfg
        # mmseg reads ``test_cfg.mode``: attribute access needs a
        # ConfigDict, also for a model built without a test_cfg.
        self.test_cfg = ConfigDict(
            test_cfg if test_cfg is not None else dict(mode='whole'))
        self.align_corners = False
        self.num_classes = 2
        self.out_channels = 1
        # Discriminator outputs of the last training batch, read by
        # DiscriminatorAccuracyHook: (logits B, is_primary B, domain B).
        self.last_domain_logits: Optional[Dict[str, object]] = None

    # ------------------------------------------------------------------
    # forward pieces
    def extract_feat(self, inputs: Tensor) -> Tensor:
        """Aligned encoder features ``B x 256 x H/16 x W/16``."""
        feats = self.backbone(inputs)
        return feats[0] if isinstance(feats, (list, tuple)) else feats

    def _decode(self, feat: Tensor, size) -> Dict[str, Tensor]:
        coarse = self.prompter(feat)
        prompt = self.prompter.mask_prompt(coarse)
        fine = self.decode_head(feat, feat, prompt)
        if fine.shape[-2:] != tuple(size):
            fine = F.interpolate(
                fine, size=size, mode='bilinear', align_corners=False)
        return dict(coarse=coarse, fine=fine)

    def encode_decode(self, inputs: Tensor,
                      batch_img_metas: List[dict]) -> Tensor:
        """Fine logits ``B x 1 x H x W`` at the input size."""
        feat = self.extract_feat(inputs)
        return self._decode(feat, inputs.shape[-2:])['fine']

    def _forward(self,
                 inputs: Tensor,
                 data_samples: OptSampleList = None) -> Tensor:
        return self.encode_decode(inputs, [])

    # ------------------------------------------------------------------
    # training
    @staticmethod
    def _targets(data_samples: SampleList) -> Tensor:
        """Binary targets ``B x H x W`` (long, 255 = ignore)."""
        return torch.stack(
            [s.gt_sem_seg.data[0] for s in data_samples]).long()

    @staticmethod
    def _domains(data_samples: SampleList, device) -> Dict[str, Tensor]:
        is_primary, domain_id = [], []
        for i, s in enumerate(data_samples):
            if 'is_primary' not in s.metainfo:
                raise KeyError(
                    f'data sample {i} has no `is_primary` metainfo; '
                    'multi-domain training needs NucleiDataset/'
                    'MultiDomainDataset samples packed by PackNucleiInputs')
            is_primary.append(bool(s.metainfo['is_primary']))
            domain_id.append(int(s.metainfo.get('domain_id', 0)))
        return dict(
            is_primary=torch.tensor(is_primary, device=device),
            domain_id=torch.tensor(domain_id, device=device))

    def loss(self, inputs: Tensor, data_samples: SampleList) -> dict:
        """Eq. 6: ``L_fine + alpha * L_CGRL + beta * L_coarse``."""
        feat = self.extract_feat(inputs)
        out = self._decode(feat, inputs.shape[-2:])
        target = self._targets(data_samples)
        losses = dict()
        losses['loss_fine'] = self.loss_fine(out['fine'], target)
        losses['loss_coarse'] = self.beta * self.prompter.loss(
            out['coarse'], target)
        if self.alignment != 'none':
            dom = self._domains(data_samples, feat.device)
            if self.alignment == 'cgrl':
                rev = cgrl(feat, dom['is_primary'], self.grl_lambda)
            else:
                rev = grl(feat, self.grl_lambda)
            logits = self.discriminator(rev)
            losses['loss_cgrl'] = self.alpha * self.loss_align(
                logits, dom['is_primary'], dom['domain_id'])
            self.last_domain_logits = dict(
                logits=logits.detach(),
                is_primary=dom['is_primary'],
                domain=[s.metainfo.get('domain', str(d)) for s, d in zip(
                    data_samples, dom['domain_id'].tolist())])
        return losses

    # ------------------------------------------------------------------
    # inference
    def predict(self,
                inputs: Tensor,
                data_samples: OptSampleList = None) -> SampleList:
        """``pred_sem_seg``, sigmoid ``seg_logits`` and
        ``pred_instance_map`` per sample (primary path only)."""
        data_samples = super().predict(inputs, data_samples)
        return add_instance_predictions(data_samples, self.postprocessor)
