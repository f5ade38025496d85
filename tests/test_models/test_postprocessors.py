import numpy as np
import pytest
import torch

from nucseg.models.postprocessors import ContourWatershed, DistanceWatershed
from nucseg.registry import TASK_UTILS


def _two_touching_discs(h=64, w=64):
    yy, xx = np.mgrid[:h, :w]
    a = (yy - 32)**2 + (xx - 22)**2 <= 100
    b = (yy - 32)**2 + (xx - 40)**2 <= 100
    inst = np.zeros((h, w), np.int32)
    inst[a] = 1
    inst[b & ~a] = 2
    return inst


def _contour_probs(inst):
    from nucseg.datasets.transforms import nuclei_boundaries
    bnd = nuclei_boundaries(inst, 1)
    p = np.zeros((3, ) + inst.shape, np.float32)
    p[0] = inst == 0
    p[1] = (inst > 0) & ~bnd
    p[2] = bnd
    return p * 0.9 + 0.1 / 3


def test_contour_watershed_splits_touching_nuclei():
    inst = _two_touching_discs()
    out = ContourWatershed()(torch.from_numpy(_contour_probs(inst)))
    assert out.dtype == np.int32
    assert out.max() == 2
    # Each predicted nucleus overlaps one GT nucleus almost perfectly.
    for i in (1, 2):
        m = out == i
        ious = [(m & (inst == j)).sum() / (m | (inst == j)).sum()
                for j in (1, 2)]
        assert max(ious) > 0.85


def test_distance_watershed_splits_merged_blob():
    fg = _two_touching_discs() > 0
    p = fg[None].astype(np.float32)
    out = DistanceWatershed(min_distance=5)(p)
    assert out.max() == 2
    assert ((out > 0) == fg).mean() > 0.99


def test_empty_and_invalid_inputs():
    z = np.zeros((3, 16, 16), np.float32)
    z[0] = 1
    assert ContourWatershed()(z).max() == 0
    assert DistanceWatershed()(np.zeros((1, 16, 16))).max() == 0
    with pytest.raises(ValueError, match='3 channels'):
        ContourWatershed()(np.zeros((2, 8, 8)))
    with pytest.raises(ValueError, match='NaN'):
        DistanceWatershed()(np.full((1, 8, 8), np.nan))


def test_small_objects_removed_and_registered():
    p = np.zeros((1, 32, 32), np.float32)
    p[0, 2:4, 2:4] = 1  # 4 px blob
    p[0, 10:20, 10:20] = 1
    out = TASK_UTILS.build(dict(type='DistanceWatershed', min_area=10))(p)
    assert out.max() == 1 and out[15, 15] == 1 and out[2, 2] == 0
