"""Encoder-decoder segmentor with instance post-processing."""
from typing import List, Optional

import torch.nn.functional as F
from mmseg.models.segmentors import EncoderDecoder
from mmseg.utils import (ConfigType, OptConfigType, OptMultiConfig,
                         OptSampleList, SampleList)
from torch import Tensor

from nucseg.models.postprocessors import add_instance_predictions
from nucseg.registry import MODELS, TASK_UTILS
from nucseg.utils.config_check import check_keys

#: ``test_cfg`` keys: mmseg's, plus ``size_divisor`` (see the class doc).
TEST_CFG_KEYS = ('mode', 'crop_size', 'stride', 'size_divisor')


def downsample_rate(backbone) -> int:
    """The factor an mmseg backbone needs its input size divisible by.

    mmseg's ``UNet`` asserts that the size is divisible by its whole
    down-sampling rate (2 per down-sampling stage); other backbones accept
    any size (1).
    """
    strides = getattr(backbone, 'strides', None)
    downsamples = getattr(backbone, 'downsamples', None)
    num_stages = getattr(backbone, 'num_stages', None)
    if strides is None or downsamples is None or num_stages is None:
        return 1
    rate = 1
    for i in range(1, num_stages):
        if strides[i] == 2 or downsamples[i - 1]:
            rate *= 2
    return rate


@MODELS.register_module()
class NucleiEncoderDecoder(EncoderDecoder):
    """mmseg's :class:`EncoderDecoder` that also predicts instance maps.

    Training is unchanged (semantic losses of the decode head on
    ``gt_sem_seg``, e.g. the background/interior/boundary target). At
    prediction time the per-pixel probabilities at the original image size
    go through ``postprocessor`` (e.g. :class:`ContourWatershed`) and each
    data sample gets ``pred_instance_map`` next to ``pred_sem_seg``, which
    the instance metrics evaluate.

    Inference accepts any image size: inputs (whole images, or slide
    windows) are zero-padded at the bottom and right to a multiple of the
    network's divisor and the logits cropped back, where mmseg would
    assert (a U-Net with 4 down-sampling stages needs multiples of 16).
    The divisor is ``test_cfg['size_divisor']`` if given, else derived from
    the backbone (:func:`downsample_rate`).

    Args:
        backbone, decode_head, neck, auxiliary_head, train_cfg,
        data_preprocessor, pretrained, init_cfg: As for mmseg's
            :class:`EncoderDecoder`.
        test_cfg (dict, optional): ``mode`` (``'whole'`` or ``'slide'``),
            ``crop_size`` and ``stride`` (slide mode), ``size_divisor``;
            other keys are rejected.
        postprocessor (dict): Config of a ``TASK_UTILS`` post-processor.
            Defaults to ``ContourWatershed``.
    """

    def __init__(self,
                 backbone: ConfigType,
                 decode_head: ConfigType,
                 neck: OptConfigType = None,
                 auxiliary_head: OptConfigType = None,
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 pretrained: Optional[str] = None,
                 init_cfg: OptMultiConfig = None,
                 postprocessor: Optional[ConfigType] = None) -> None:
        check_keys(test_cfg, TEST_CFG_KEYS, 'NucleiEncoderDecoder.test_cfg')
        super().__init__(
            backbone=backbone,
            decode_head=decode_head,
            neck=neck,
            auxiliary_head=auxiliary_head,
            train_cfg=train_cfg,
            test_cfg=test_cfg,
            data_preprocessor=data_preprocessor,
            pretrained=pretrained,
            init_cfg=init_cfg)
        self.postprocessor = TASK_UTILS.build(
            postprocessor or dict(type='ContourWatershed'))

    @property
    def size_divisor(self) -> int:
        """Inference inputs are padded to a multiple of this."""
        given = (self.test_cfg or {}).get('size_divisor', None)
        return int(given) if given else downsample_rate(self.backbone)

    def encode_decode(self, inputs: Tensor,
                      batch_img_metas: List[dict]) -> Tensor:
        """Logits at the input size, padding to :attr:`size_divisor`.

        Args:
            inputs (Tensor): ``B x C x H x W`` images.
            batch_img_metas (list[dict]): Image metas.

        Returns:
            Tensor: ``B x K x H x W`` logits.
        """
        h, w = inputs.shape[-2:]
        d = self.size_divisor
        pad_h, pad_w = (-h) % d, (-w) % d
        if not pad_h and not pad_w:
            return super().encode_decode(inputs, batch_img_metas)
        padded = F.pad(inputs, (0, pad_w, 0, pad_h))
        shape = (h + pad_h, w + pad_w)
        # The decode head resizes its logits to pad_shape (or img_shape):
        # tell it the padded size, then crop the padding off.
        metas = [dict(m, img_shape=shape, pad_shape=shape)
                 for m in batch_img_metas]
        logits = super().encode_decode(padded, metas)
        return logits[..., :h, :w]

    def predict(self,
                inputs: Tensor,
                data_samples: OptSampleList = None) -> SampleList:
        """Semantic prediction plus ``pred_instance_map`` per sample."""
        data_samples = super().predict(inputs, data_samples)
        return add_instance_predictions(data_samples, self.postprocessor)
