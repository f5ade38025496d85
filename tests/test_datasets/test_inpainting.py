"""Nuclei inpainting (CyC-PDAM Eq. 1-2) on a synthetic H&E case."""
import numpy as np
import pytest

from nucseg.datasets.transforms import (NucleiInpainting,
                                        inpaint_unannotated_nuclei,
                                        unannotated_nuclei_mask)
from nucseg.utils.stain import rgb_to_hed

BACKGROUND = (236, 198, 222)   # eosin-pink background
NUCLEUS = (86, 56, 142)        # haematoxylin-purple nuclei


def _disk(shape, cy, cx, r):
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    return (yy - cy)**2 + (xx - cx)**2 <= r * r


def _case(seed=0):
    rng = np.random.default_rng(seed)
    shape = (96, 96)
    img = np.empty(shape + (3, ), np.float32)
    img[:] = BACKGROUND
    img += rng.normal(0, 3, img.shape)
    label = np.zeros(shape, np.int32)
    for k, (cy, cx) in enumerate([(20, 20), (20, 70), (70, 25)], 1):
        disk = _disk(shape, cy, cx, 7)
        img[disk] = NUCLEUS + rng.normal(0, 3, (disk.sum(), 3))
        label[disk] = k
    extra = _disk(shape, 68, 70, 7)  # a synthesised nucleus, no label
    img[extra] = NUCLEUS + rng.normal(0, 3, (extra.sum(), 3))
    return np.clip(img, 0, 255).astype(np.uint8), label, extra


def test_extra_nucleus_disappears_annotated_ones_untouched():
    img, label, extra = _case()
    out, aux = inpaint_unannotated_nuclei(img, label)
    # M_aux covers the unannotated nucleus and nothing annotated
    assert aux[extra].mean() > 0.9
    assert not (aux & (label > 0)).any()
    # every annotated nucleus keeps its pixels bit for bit (and so does
    # every pixel outside M_aux)
    assert np.array_equal(out[label > 0], img[label > 0])
    assert np.array_equal(out[~aux], img[~aux])
    # the removed nucleus' haematoxylin drops to the background level
    h_in, h_out = rgb_to_hed(img)[..., 0], rgb_to_hed(out)[..., 0]
    ring = _disk(label.shape, 68, 70, 14) & ~_disk(label.shape, 68, 70, 9)
    bg = h_in[ring].mean()
    nucleus = h_in[label == 1].mean()
    assert h_in[extra].mean() > bg + 0.5 * (nucleus - bg)
    assert abs(h_out[extra].mean() - bg) < 0.1 * (nucleus - bg)


def test_nothing_to_inpaint_and_options():
    img, label, extra = _case(1)
    full = label.copy()
    full[extra] = 4  # everything annotated: no auxiliary nucleus
    out, aux = inpaint_unannotated_nuclei(img, full)
    assert not aux.any() and np.array_equal(out, img)
    # min_size drops the blob; label_dilation=0 is the paper's plain "- M"
    assert not unannotated_nuclei_mask(img, label, min_size=500).any()
    plain = unannotated_nuclei_mask(img, label, label_dilation=0)
    assert plain.sum() >= unannotated_nuclei_mask(img, label).sum()


def test_transform_and_bad_input():
    img, label, extra = _case()
    results = NucleiInpainting()(dict(img=img.copy(), gt_instance_map=label,
                                      img_path='x.png'))
    assert np.array_equal(results['img'][label > 0], img[label > 0])
    assert 0 < results['inpaint_fraction'] < 0.1
    with pytest.raises(KeyError, match='LoadInstanceAnnotations'):
        NucleiInpainting()(dict(img=img, img_path='x.png'))
    with pytest.raises(Exception, match='x.png'):
        inpaint_unannotated_nuclei(img, label[:50], name='x.png')
    with pytest.raises(ValueError, match='uint8'):
        inpaint_unannotated_nuclei(img.astype(np.float32), label)
