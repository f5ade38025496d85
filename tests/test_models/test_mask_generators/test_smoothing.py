"""Per-mask smoothing of SAM masks (official ``keep_and_smooth``)."""
import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.measure import label
from skimage.morphology import disk

from nucseg.models.mask_generators.candidates import InstanceCandidates
from nucseg.models.mask_generators.smoothing import (keep_largest_and_smooth,
                                                     smooth_candidates)


def _official(mask, radius=2):
    """The authors' keep_and_smooth on a full-size mask (plain scipy)."""
    lbls = label(mask, connectivity=1)
    if lbls.max() <= 1:
        return mask
    counts = np.bincount(lbls.ravel())
    counts[0] = 0
    core = lbls == counts.argmax()
    fp = disk(radius).astype(bool)
    core = ndi.binary_closing(core, fp)
    core = ndi.binary_opening(core, fp)
    return ndi.binary_fill_holes(core)


def _fragmented():
    yy, xx = np.mgrid[:64, :64]
    body = (xx - 30)**2 + (yy - 32)**2 <= 12**2
    body[30:33, 20:40] = False  # a thin cut (closing repairs it)
    body[28, 28] = False  # a pinhole (filled)
    speck = (xx - 55)**2 + (yy - 10)**2 <= 4
    diagonal = np.zeros_like(body)
    diagonal[50, 50] = diagonal[51, 51] = True  # 8- but not 4-connected
    return body | speck | diagonal, body


def test_largest_piece_closed_opened_filled():
    mask, body = _fragmented()
    out = keep_largest_and_smooth(mask)
    np.testing.assert_array_equal(out, _official(mask))
    assert not out[5:15, 50:60].any()  # the speck is gone
    assert out[31, 30] and out[28, 28]  # cut closed, pinhole filled
    assert ndi.label(out)[1] == 1


def test_single_piece_is_left_alone():
    yy, xx = np.mgrid[:40, :40]
    blob = (xx - 20)**2 + (yy - 20)**2 <= 64
    blob[18:21, 20] = False  # a notch the official code would not touch
    np.testing.assert_array_equal(keep_largest_and_smooth(blob), blob)
    smoothed = keep_largest_and_smooth(blob, only_fragmented=False)
    assert smoothed[19, 20]
    empty = np.zeros((5, 5), bool)
    assert not keep_largest_and_smooth(empty).any()
    with pytest.raises(ValueError, match='radius'):
        keep_largest_and_smooth(blob, radius=-1)


def test_tight_crops_are_smoothed_like_full_masks():
    """Crops touch their own box: the padded morphology treats the outside
    as background, like the full-size mask."""
    mask, _ = _fragmented()
    cands = InstanceCandidates.from_masks([mask, mask[::-1]], [0.9, 0.8])
    out = smooth_candidates(cands)
    np.testing.assert_array_equal(out.mask(0), _official(mask))
    np.testing.assert_array_equal(out.mask(1), _official(mask[::-1]))
    np.testing.assert_array_equal(out.scores, [0.9, 0.8])
