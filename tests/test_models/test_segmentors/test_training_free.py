"""TrainingFreeSegmentor: the shared predict/loss of SPROUT and the
classical baseline."""
import numpy as np
import pytest
import torch

from nucseg.models.segmentors import (SPROUT, HaematoxylinWatershed,
                                      TrainingFreeSegmentor)
from nucseg.structures import NucleiDataSample
from nucseg.utils.checkpoint import is_training_free


def _scene():
    img = np.full((40, 60, 3), 235, np.uint8)
    yy, xx = np.mgrid[:40, :60]
    for cy, cx in ((12, 14), (25, 40)):
        img[(yy - cy) ** 2 + (xx - cx) ** 2 <= 36] = (60, 30, 120)
    return img


def test_predict_at_ori_shape_and_loss_refused():
    assert issubclass(SPROUT, TrainingFreeSegmentor)
    model = HaematoxylinWatershed(
        postprocessor=dict(min_area=5, hole_area=5))
    assert is_training_free(model)
    img = _scene()
    x = torch.from_numpy(img).permute(2, 0, 1).float()
    direct = model.segment(img)
    assert len(np.unique(direct)) == 3  # two nuclei + background
    # Padded input, prediction at the original size (pipeline resized 2x
    # down): cropped to img_shape, then nearest-resized to ori_shape.
    padded = torch.zeros(3, 48, 64)
    padded[:, :40, :60] = x
    sample = NucleiDataSample(metainfo=dict(img_shape=(40, 60),
                                            ori_shape=(80, 120)))
    out = model.predict(padded[None], [sample])[0]
    inst = out.pred_instance_map.data[0].numpy()
    assert inst.shape == (80, 120)
    np.testing.assert_array_equal(inst[::2, ::2], direct)
    assert torch.equal(out.pred_sem_seg.data[0],
                       torch.from_numpy(inst > 0).long())
    assert [m.shape for m in model._forward(x[None])] == [(40, 60)]
    with pytest.raises(RuntimeError,
                       match='HaematoxylinWatershed is training-free'):
        model.loss(x[None], [])
    with pytest.raises(NotImplementedError, match='instance maps only'):
        model.encode_decode(x[None], [])
