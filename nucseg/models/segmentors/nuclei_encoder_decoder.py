"""Encoder-decoder segmentor with instance post-processing."""
from typing import Optional

from mmseg.models.segmentors import EncoderDecoder
from mmseg.utils import ConfigType, OptSampleList, SampleList
from torch import Tensor

from nucseg.models.postprocessors import add_instance_predictions
from nucseg.registry import MODELS, TASK_UTILS


@MODELS.register_module()
class NucleiEncoderDecoder(EncoderDecoder):
    """mmseg's :class:`EncoderDecoder` that also predicts instance maps.

    Training is unchanged (semantic losses of the decode head on
    ``gt_sem_seg``, e.g. the background/interior/boundary target). At
    prediction time the per-pixel probabilities at the original image size
    go through ``postprocessor`` (e.g. :class:`ContourWatershed`) and each
    data sample gets ``pred_instance_map`` next to ``pred_sem_seg``, which
    the instance metrics evaluate.

    Args:
        postprocessor (dict): Config of a ``TASK_UTILS`` post-processor.
        **kwargs: Arguments of :class:`mmseg.models.EncoderDecoder`.
    """

    def __init__(self,
                 *args,
                 postprocessor: Optional[ConfigType] = None,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.postprocessor = TASK_UTILS.build(
            postprocessor or dict(type='ContourWatershed'))

    def predict(self,
                inputs: Tensor,
                data_samples: OptSampleList = None) -> SampleList:
        """Semantic prediction plus ``pred_instance_map`` per sample."""
        data_samples = super().predict(inputs, data_samples)
        return add_instance_predictions(data_samples, self.postprocessor)
