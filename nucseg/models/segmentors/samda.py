"""SAMDA: SAM + nnU-Net few-shot domain adaptation (Wang & Xiao, 2024).

Model (Sec. 2.1, Fig. 1)::

    grey  = data_preprocessor(batch)                  # B x 1 x H x W, 0..255
    skips = unet.encode(unet_input(grey))             # E_1 .. E_8
    h_sam = projector(sam_encoder(sam_input(grey)))   # B x P x h x w
    logits = unet.decode(skips, resize(h_sam, E_8))   # concat at E_8

Training runs in three steps, one config each, chained by ``load_from``
(the same model class and state-dict keys in every step; only ``stage``
and therefore the trainable parts change):

1. source supervised: Dice + CE on source images; trains the U-Net and
   the projector (the SAM ViT is frozen throughout, Sec. 3.2);
2. unsupervised adaptation: the U-Net is frozen; the "SAM-based
   adaptation module" (frozen ViT + projector) sees source/target pairs
   and the projector is trained with the perceptual loss (Eq. 2-5) between
   the two projected embeddings;
3. few-shot target fine-tuning: Dice + CE on the N target shots; trains
   the U-Net and the projector again.

Parts that a stage freezes get ``requires_grad=False`` when the model is
built; the optimizer constructor ``TrainableParamsOptimWrapperConstructor``
gives only trainable parameters to the optimizer, so frozen parts have
neither gradients nor optimizer state.
"""
import math
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.logging import print_log
from mmseg.models.segmentors import BaseSegmentor
from mmseg.utils import ConfigType, OptConfigType, OptSampleList, SampleList
from torch import Tensor, nn

from nucseg.models.data_preprocessors import SAMDADataPreprocessor
from nucseg.models.postprocessors import add_instance_predictions
from nucseg.registry import MODELS, TASK_UTILS

__all__ = ['SAMDA', 'SAMDA_PARTS', 'SAMDA_STAGE_TRAINABLE', 'match_size']

#: Parameter groups whose trainability each stage decides.
SAMDA_PARTS = ('unet_encoder', 'unet_decoder', 'projector', 'sam_encoder')
#: What each step of the paper trains. ``sam_encoder`` means the SAM
#: parameters the encoder module itself leaves trainable (adapters of a
#: frozen ``SAMImageEncoder``; none with SAMDA's plain frozen ViT).
SAMDA_STAGE_TRAINABLE = {
    1: ('unet_encoder', 'unet_decoder', 'projector', 'sam_encoder'),
    2: ('projector', 'sam_encoder'),
    3: ('unet_encoder', 'unet_decoder', 'projector', 'sam_encoder'),
}
TEST_MODES = ('whole', 'slide')


def match_size(feat: Tensor, size: Sequence[int]) -> Tensor:
    """Resize ``B x C x h x w`` features to ``size`` (the bottleneck).

    Downsampling averages over the covered cells (adaptive average
    pooling, i.e. area interpolation); upsampling is bilinear.
    """
    size = tuple(int(s) for s in size)
    if tuple(feat.shape[-2:]) == size:
        return feat
    if feat.shape[-2] >= size[0] and feat.shape[-1] >= size[1]:
        return F.adaptive_avg_pool2d(feat, size)
    return F.interpolate(
        feat, size=size, mode='bilinear', align_corners=False)


@MODELS.register_module()
class SAMDA(BaseSegmentor):
    """nnU-Net "expert" + frozen SAM encoder and projector ("generic").

    Args:
        unet (dict): ``NNUNetPlainConvUNet`` config; its
            ``extra_bottleneck_channels`` is set to the projector's output
            channels here.
        sam_encoder (dict): Image encoder config returning SAM's embedding
            (``SAMImageEncoder``: frozen ViT, ``adapter=None``;
            ``SAMMed2DImageEncoder`` for SAM-Med2D weights).
        projector (dict): ``SAMEmbeddingProjector`` config.
        stage (int): Training step of the paper (1, 2 or 3); selects the
            loss and the trainable parts.
        trainable (Sequence[str], optional): Override the stage's trainable
            parts, a subset of :data:`SAMDA_PARTS`.
        deep_supervision (bool): nnU-Net's deep supervision in steps 1 and
            3 (with ``False`` the unused auxiliary output layers are
            frozen).
        loss_seg (dict): Segmentation loss of steps 1 and 3
            (``DiceCELoss``, Eq. 1).
        loss_adapt (dict): Step-2 loss (``PerceptualLoss``, Eq. 2-5).
        source_domain_id (int): ``domain_id`` of source samples in step 2
            (``MultiDomainDataset`` numbers its datasets 0, 1, ...).
        target_domain_id (int): ``domain_id`` of target samples.
        postprocessor (dict, optional): ``TASK_UTILS`` instance
            post-processor on the foreground probability (default
            ``ConnectedComponents``).
        data_preprocessor (dict): Must be ``SAMDADataPreprocessor``.
        train_cfg (dict, optional): Unused.
        test_cfg (dict, optional): ``mode='whole'`` (pad to the U-Net's
            total stride) or ``'slide'`` with ``crop_size`` and ``stride``
            (windows of the training patch size, logits averaged).
        init_cfg (dict, optional): mmengine init config.
    """

    def __init__(self,
                 unet: ConfigType,
                 sam_encoder: ConfigType,
                 projector: ConfigType,
                 stage: int = 1,
                 trainable: Optional[Sequence[str]] = None,
                 deep_supervision: bool = True,
                 loss_seg: ConfigType = dict(type='DiceCELoss'),
                 loss_adapt: ConfigType = dict(type='PerceptualLoss'),
                 source_domain_id: int = 0,
                 target_domain_id: int = 1,
                 postprocessor: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 init_cfg: OptConfigType = None) -> None:
        super().__init__(
            data_preprocessor=data_preprocessor or dict(
                type='SAMDADataPreprocessor'),
            init_cfg=init_cfg)
        if not isinstance(self.data_preprocessor, SAMDADataPreprocessor):
            raise TypeError(
                'SAMDA needs model.data_preprocessor of type '
                'SAMDADataPreprocessor (it builds the U-Net and SAM inputs),'
                f' got {type(self.data_preprocessor).__name__}')
        if stage not in SAMDA_STAGE_TRAINABLE:
            raise ValueError(f'SAMDA stage must be 1, 2 or 3, got {stage!r}')
        if source_domain_id == target_domain_id:
            raise ValueError('source_domain_id and target_domain_id must '
                             'differ')
        self.stage = int(stage)
        self.deep_supervision = bool(deep_supervision)
        self.source_domain_id = int(source_domain_id)
        self.target_domain_id = int(target_domain_id)

        self.projector = MODELS.build(projector)
        out_ch = getattr(self.projector, 'out_channels', None)
        if not isinstance(out_ch, int):
            raise TypeError('model.projector must expose an integer '
                            '`out_channels`')
        unet = dict(unet)
        given = unet.get('extra_bottleneck_channels', out_ch)
        if given != out_ch:
            raise ValueError(
                f'model.unet.extra_bottleneck_channels={given} differs from '
                f'model.projector.out_channels={out_ch}; leave it unset')
        unet['extra_bottleneck_channels'] = out_ch
        self.unet = MODELS.build(unet)
        self.sam_encoder = MODELS.build(sam_encoder)
        self.loss_seg = MODELS.build(loss_seg)
        self.loss_adapt = MODELS.build(loss_adapt)
        self.postprocessor = TASK_UTILS.build(
            postprocessor or dict(type='ConnectedComponents'))
        self.train_cfg = train_cfg
        self.test_cfg = self._check_test_cfg(test_cfg)
        self.align_corners = False
        self.num_classes = self.unet.num_classes
        self.out_channels = self.unet.num_classes

        parts = SAMDA_STAGE_TRAINABLE[self.stage] if trainable is None \
            else tuple(trainable)
        unknown = sorted(set(parts) - set(SAMDA_PARTS))
        if unknown:
            raise ValueError(f'model.trainable: unknown parts {unknown}; '
                             f'choose from {SAMDA_PARTS}')
        self.trainable_parts = tuple(p for p in SAMDA_PARTS if p in parts)
        self._sam_own_trainable = [
            p for p in self.sam_encoder.parameters() if p.requires_grad
        ]
        self._apply_freezing()

    @staticmethod
    def _check_test_cfg(test_cfg: OptConfigType) -> dict:
        cfg = dict(test_cfg or dict(mode='whole'))
        unknown = sorted(set(cfg) - {'mode', 'crop_size', 'stride'})
        if unknown:
            raise ValueError(f'model.test_cfg: unknown keys {unknown}; '
                             'accepted: mode, crop_size, stride')
        mode = cfg.setdefault('mode', 'whole')
        if mode not in TEST_MODES:
            raise ValueError(f'model.test_cfg.mode must be one of '
                             f'{TEST_MODES}, got {mode!r}')
        if mode == 'slide':
            for key in ('crop_size', 'stride'):
                value = cfg.get(key)
                if value is None or len(value) != 2 or min(value) <= 0:
                    raise ValueError(
                        f"model.test_cfg.{key} must be (h, w) > 0 for "
                        f"mode='slide', got {value!r}")
        return cfg

    # ------------------------------------------------------------------
    # parameter groups and freezing
    def part_parameters(self) -> Dict[str, List[nn.Parameter]]:
        """Parameters of each part of :data:`SAMDA_PARTS` (each once)."""
        return dict(
            unet_encoder=self.unet.encoder_parameters(),
            unet_decoder=self.unet.decoder_parameters(),
            projector=list(self.projector.parameters()),
            sam_encoder=list(self._sam_own_trainable))

    def _apply_freezing(self) -> None:
        for p in self.parameters():
            p.requires_grad = False
        for name, params in self.part_parameters().items():
            if name in self.trainable_parts:
                for p in params:
                    p.requires_grad = True
        if self.stage != 2 and not self.deep_supervision:
            # Auxiliary outputs are only used with deep supervision.
            for layer in self.unet.net.decoder.seg_layers[:-1]:
                for p in layer.parameters():
                    p.requires_grad = False
        n_train = sum(p.numel() for p in self.parameters() if p.requires_grad)
        n_all = sum(p.numel() for p in self.parameters())
        print_log(
            f'SAMDA step {self.stage}: trains {list(self.trainable_parts)}; '
            f'{n_train} of {n_all} parameters trainable', logger='current')

    def train(self, mode: bool = True) -> 'SAMDA':
        """Set the mode; frozen U-Net parts stay in eval mode."""
        super().train(mode)
        if 'unet_encoder' not in self.trainable_parts and \
                'unet_decoder' not in self.trainable_parts:
            self.unet.eval()
        return self

    # ------------------------------------------------------------------
    # forward pieces
    def sam_features(self, grey: Tensor) -> Tensor:
        """Projected SAM embedding of grey images at its own resolution.

        Args:
            grey (Tensor): ``B x 1 x H x W`` in [0, 255].

        Returns:
            Tensor: ``B x P x h x w``; the padding SAM's input needs for
            non-square images is cropped away.
        """
        x, (vh, vw) = self.data_preprocessor.sam_input(grey)
        emb = self.sam_encoder(x)
        emb = emb[0] if isinstance(emb, (list, tuple)) else emb
        eh = math.ceil(emb.shape[-2] * vh / x.shape[-2])
        ew = math.ceil(emb.shape[-1] * vw / x.shape[-1])
        return self.projector(emb[..., :eh, :ew])

    def extract_feat(self, inputs: Tensor) -> Tuple[List[Tensor], Tensor]:
        """U-Net skips (bottleneck last) and the projected SAM embedding
        resized to the bottleneck (``B x P x h_b x w_b``)."""
        skips = self.unet.encode(self.data_preprocessor.unet_input(inputs))
        extra = match_size(self.sam_features(inputs), skips[-1].shape[-2:])
        return skips, extra

    def seg_logits(self,
                   grey: Tensor,
                   deep_supervision: bool = False
                   ) -> Union[Tensor, List[Tensor]]:
        """Logits ``B x C x H x W`` (a list with deep supervision)."""
        skips, extra = self.extract_feat(grey)
        return self.unet.decode(skips, extra, deep_supervision)

    def encode_decode(self, inputs: Tensor,
                      batch_img_metas: List[dict]) -> Tensor:
        """Logits at the input size (inputs sized for the U-Net)."""
        return self.seg_logits(inputs)

    def _forward(self,
                 inputs: Tensor,
                 data_samples: OptSampleList = None) -> Tensor:
        return self.inference(inputs)

    # ------------------------------------------------------------------
    # training
    def loss(self, inputs: Tensor, data_samples: SampleList) -> dict:
        """Step 1/3: Dice + CE (Eq. 1); step 2: perceptual loss."""
        if self.stage == 2:
            return self._adaptation_loss(inputs, data_samples)
        missing = [i for i, s in enumerate(data_samples)
                   if 'gt_sem_seg' not in s]
        if missing:
            raise KeyError(
                f'SAMDA step {self.stage} needs gt_sem_seg in every data '
                f'sample (samples {missing} have none); add '
                "GenerateNucleiTarget(mode='binary') to the train pipeline")
        target = torch.stack(
            [s.gt_sem_seg.data[0] for s in data_samples]).long()
        logits = self.seg_logits(inputs, self.deep_supervision)
        return self.loss_seg(logits, target, return_terms=True)

    def _domain_ids(self, data_samples: SampleList) -> Tensor:
        ids = []
        for i, s in enumerate(data_samples):
            if 'domain_id' not in s.metainfo:
                raise KeyError(
                    f'SAMDA step 2: data sample {i} has no domain_id; train '
                    'on a MultiDomainDataset (source, target) packed by '
                    'PackNucleiInputs')
            ids.append(int(s.metainfo['domain_id']))
        return torch.tensor(ids)

    def _adaptation_loss(self, inputs: Tensor,
                         data_samples: SampleList) -> dict:
        ids = self._domain_ids(data_samples)
        src = (ids == self.source_domain_id).nonzero()[:, 0]
        tgt = (ids == self.target_domain_id).nonzero()[:, 0]
        if len(src) == 0 or len(src) != len(tgt):
            raise ValueError(
                f'SAMDA step 2 pairs source and target images: the batch '
                f'has {len(src)} source (domain_id {self.source_domain_id})'
                f' and {len(tgt)} target (domain_id {self.target_domain_id})'
                ' samples; use MultiDomainSampler with equal domain_ratio')
        feats = self.sam_features(inputs)
        feat_s = feats[src.to(feats.device)]
        feat_t = feats[tgt.to(feats.device)]
        losses = self.loss_adapt(feat_s, feat_t)
        # Logged only (no 'loss' in the key): a collapsing projector shows
        # as a falling feature spread.
        losses['proj_std'] = feats.detach().std(dim=(2, 3)).mean()
        return losses

    # ------------------------------------------------------------------
    # inference
    def _pad_to(self, grey: Tensor, size: Tuple[int, int]) -> Tensor:
        ph, pw = size[0] - grey.shape[-2], size[1] - grey.shape[-1]
        if ph <= 0 and pw <= 0:
            return grey
        return F.pad(grey, (0, max(pw, 0), 0, max(ph, 0)), mode='replicate')

    def whole_inference(self, grey: Tensor) -> Tensor:
        """Pad to the U-Net's total stride (replicating edges), predict,
        crop back."""
        h, w = grey.shape[-2:]
        sy, sx = self.unet.total_stride
        padded = self._pad_to(grey, (-(-h // sy) * sy, -(-w // sx) * sx))
        return self.seg_logits(padded)[..., :h, :w]

    def slide_inference(self, grey: Tensor) -> Tensor:
        """Windows of ``crop_size`` every ``stride``; logits averaged.

        Images smaller than a window are padded (replicating edges). Each
        window builds its own U-Net and SAM inputs, as training patches do.
        """
        ch, cw = self.test_cfg['crop_size']
        sh, sw = self.test_cfg['stride']
        h, w = grey.shape[-2:]
        grey = self._pad_to(grey, (ch, cw))
        hp, wp = grey.shape[-2:]
        rows = max(hp - ch + sh - 1, 0) // sh + 1
        cols = max(wp - cw + sw - 1, 0) // sw + 1
        out = grey.new_zeros((grey.shape[0], self.num_classes, hp, wp))
        count = grey.new_zeros((1, 1, hp, wp))
        for r in range(rows):
            for c in range(cols):
                y1 = min(r * sh, hp - ch)
                x1 = min(c * sw, wp - cw)
                crop = grey[..., y1:y1 + ch, x1:x1 + cw]
                out[..., y1:y1 + ch, x1:x1 + cw] += self.whole_inference(crop)
                count[..., y1:y1 + ch, x1:x1 + cw] += 1
        return (out / count)[..., :h, :w]

    def inference(self, inputs: Tensor,
                  batch_img_metas: Optional[List[dict]] = None) -> Tensor:
        """Logits ``B x C x H x W`` of grey images (``test_cfg.mode``)."""
        if self.test_cfg.get('mode', 'whole') == 'slide':
            return self.slide_inference(inputs)
        return self.whole_inference(inputs)

    def predict(self,
                inputs: Tensor,
                data_samples: OptSampleList = None) -> SampleList:
        """``seg_logits``, ``pred_sem_seg`` (argmax) and
        ``pred_instance_map`` (connected components) per sample."""
        logits = self.inference(inputs)
        samples = self.postprocess_result(logits, data_samples)
        return add_instance_predictions(samples, self.postprocessor)
