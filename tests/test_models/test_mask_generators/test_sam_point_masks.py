"""SAMPointMaskGenerator with a tiny random SAM (input size 256).

The generator works with any SAM input size: with ``image_size=256`` and
``patch_size=128`` the patch-to-encoder ratio is 2, as for the real
configuration (512-px patches, 1024 encoder), so the windowed upsampling
path is the one exercised.
"""
import numpy as np
import pytest
import torch
from scipy import ndimage as ndi
from segment_anything import SamPredictor

from nucseg.datasets.synthetic import generate_sample
from nucseg.models.mask_generators.candidates import InstanceCandidates
from nucseg.models.mask_generators.sam_point_masks import (
    SAMPointMaskGenerator, default_points_per_batch,
    merge_overlapping_candidates, patch_starts)
from nucseg.registry import TASK_UTILS

RAW = dict(min_area=0, max_area=10**9, merge_iou=None, border_margin=None,
           max_neg_inside=None)


@pytest.fixture(scope='module')
def sample():
    """160x192 synthetic H&E image, centroid and background points."""
    image, label = generate_sample('he_kumar', (160, 192), 3)
    ids = np.arange(1, label.max() + 1)
    pos = np.array(ndi.center_of_mass(label > 0, label, ids))[:, ::-1]
    pos = pos[np.isfinite(pos).all(1)][:24]
    yy, xx = np.mgrid[6:160:12, 6:192:12]
    grid = np.stack([xx.ravel(), yy.ravel()], 1)
    neg = grid[label[grid[:, 1], grid[:, 0]] == 0].astype(np.float64)
    return image, pos, neg


def _naive(sam, image, pos, neg, gen, multimask=False):
    """Per-patch SamPredictor loop of the official code, full masks."""
    h, w = image.shape[:2]
    p, masks, scores = gen.patch_size, [], []
    predictor = SamPredictor(sam)
    for top in patch_starts(h, p, gen.stride):
        for left in patch_starts(w, p, gen.stride):
            inp = ((pos[:, 0] >= left) & (pos[:, 0] < left + p)
                   & (pos[:, 1] >= top) & (pos[:, 1] < top + p))
            inn = ((neg[:, 0] >= left) & (neg[:, 0] < left + p)
                   & (neg[:, 1] >= top) & (neg[:, 1] < top + p))
            if not inp.any():
                continue
            off = np.array([left, top])
            coords, labels = gen.build_prompts(pos[inp] - off, neg[inn] - off)
            predictor.set_image(image[top:top + p, left:left + p])
            for c, lab in zip(coords, labels):
                m, s, _ = predictor.predict(c, lab, multimask_output=multimask)
                k = int(np.argmax(s))
                full = np.zeros((h, w), bool)
                full[top:top + p, left:left + p] = m[k]
                masks.append(full)
                scores.append(s[k])
    return masks, np.array(scores)


def _assert_same(cands, masks, scores, atol=0.0):
    kept = [k for k, m in enumerate(masks) if m.any()]
    assert len(cands) == len(kept) > 0
    for i, k in enumerate(kept):
        np.testing.assert_array_equal(cands.mask(i), masks[k])
    np.testing.assert_allclose(cands.scores, scores[kept], atol=atol, rtol=0)


def test_helpers():
    assert patch_starts(1000, 512, 256) == [0, 256, 488]
    assert patch_starts(512, 512, 256) == [0]
    assert patch_starts(768, 512, 256) == [0, 256]
    with pytest.raises(ValueError, match='pad'):
        patch_starts(100, 512, 256)
    assert default_points_per_batch('cpu') == 1
    assert default_points_per_batch(torch.device('cuda', 0)) > 1


def test_merge_keeps_best_of_transitive_groups():
    base = np.zeros((40, 40), bool)
    base[5:25, 5:25] = True
    shifted = np.roll(base, 1, 1)  # IoU 0.9 with base
    shifted2 = np.roll(base, 2, 1)  # IoU 0.9 with shifted, 0.82 with base
    far = np.roll(base, 10, 0) & ~base  # disjoint from base
    far[30:35, 30:35] = True
    c = InstanceCandidates.from_masks([base, shifted, shifted2, far],
                                      [0.5, 0.9, 0.7, 0.1])
    m = merge_overlapping_candidates(c, 0.8)
    assert m.scores.tolist() == [0.9, 0.1]
    np.testing.assert_array_equal(m.mask(0), shifted)
    # Chain with the 0.9 link only: base-shifted and shifted-shifted2
    # merge transitively even though each pair is tested separately.
    assert len(merge_overlapping_candidates(c, 0.85)) == 2
    assert len(merge_overlapping_candidates(c, 0.95)) == 4


@pytest.mark.parametrize('multimask', [False, True])
def test_exact_decoder_equals_naive_predictor_loop(tiny_sam, sample,
                                                   multimask):
    image, pos, neg = sample
    gen = SAMPointMaskGenerator(
        sam=tiny_sam, patch_size=128, decoder='exact', points_per_batch=1,
        multimask_output=multimask, **RAW)
    cands = gen(image, pos, neg)
    masks, scores = _naive(tiny_sam, image, pos, neg, gen, multimask)
    assert len(masks) > len(pos)  # points shared by overlapping patches
    _assert_same(cands, masks, scores)


def test_batches_and_decoders_give_the_same_candidates(tiny_sam, sample):
    image, pos, neg = sample
    ref = SAMPointMaskGenerator(
        sam=tiny_sam, patch_size=128, decoder='exact', points_per_batch=1,
        **RAW)(image, pos, neg)
    for decoder, bs in (('fast', 1), ('fast', 5), ('exact', 7),
                        ('sam', 4)):
        gen = SAMPointMaskGenerator(
            sam=tiny_sam, patch_size=128, decoder=decoder,
            points_per_batch=bs, **RAW)
        out = gen(image, pos, neg)
        assert len(out) == len(ref)
        # Float rounding may flip a pixel whose logit is ~1e-7 from 0.
        flips = sum((out.mask(k) != ref.mask(k)).sum()
                    for k in range(len(ref)))
        assert flips <= 1e-5 * ref.areas.sum()
        np.testing.assert_allclose(out.scores, ref.scores, atol=1e-5)
    # Full-size upsampling gives the same masks as the windows.
    full = SAMPointMaskGenerator(
        sam=tiny_sam, patch_size=128, decoder='exact', points_per_batch=1,
        exact_upsample=True, **RAW)(image, pos, neg)
    for k in range(len(ref)):
        np.testing.assert_array_equal(full.mask(k), ref.mask(k))


def test_small_image_is_padded_with_the_mean_colour(tiny_sam, sample):
    image, pos, neg = sample
    small = image[:100, :90]
    inside = (pos[:, 0] < 90) & (pos[:, 1] < 100)
    negs = neg[(neg[:, 0] < 90) & (neg[:, 1] < 100)]
    gen = SAMPointMaskGenerator(
        sam=tiny_sam, patch_size=128, decoder='exact', **RAW)
    cands = gen(small, pos[inside], negs)
    assert cands.image_shape == (100, 90)
    padded = np.empty((128, 128, 3), np.uint8)
    padded[:] = gen.pad_color
    padded[:100, :90] = small
    masks, scores = _naive(tiny_sam, padded, pos[inside], negs, gen)
    clipped = [m[:100, :90] for m in masks]
    _assert_same(cands, clipped, scores)


def test_filters_and_merging(tiny_sam, sample):
    image, pos, neg = sample
    raw = SAMPointMaskGenerator(
        sam=tiny_sam, patch_size=128, **RAW)(image, pos, neg)
    gen = SAMPointMaskGenerator(
        sam=tiny_sam, patch_size=128, min_area=200, max_area=6000,
        merge_iou=None, border_margin=None, max_neg_inside=None)
    out = gen(image, pos, neg)
    ok = (raw.areas >= 200) & (raw.areas <= 6000)
    assert 0 < len(out) == ok.sum() < len(raw)
    assert out.areas.min() >= 200 and out.areas.max() <= 6000
    # Merging: no two kept masks overlap with IoU > 0.8.
    merged = SAMPointMaskGenerator(
        sam=tiny_sam, patch_size=128, **dict(RAW, merge_iou=0.8))(
            image, pos, neg)
    assert len(merged) < len(raw)
    _, _, iou = merged.pairwise_iou()
    assert (iou <= 0.8).all()


def test_border_and_negative_point_filters(tiny_sam):
    # Patch at left=64, top=0 of a 160x192 image: its left (x=64) and
    # bottom (y=127) sides are inner borders, top and right are not.
    shape = (160, 192)

    def rect(x0, y0, x1, y1):
        m = np.zeros(shape, bool)
        m[y0:y1, x0:x1] = True
        return m

    masks = [
        rect(66, 50, 80, 60),  # 2 px from the inner left side: dropped
        rect(70, 0, 80, 10),  # on the image's top border: kept
        rect(180, 50, 192, 60),  # on the image's right border: kept
        rect(100, 120, 110, 126),  # 1 px from the inner bottom: dropped
        rect(100, 50, 110, 60),  # inside: kept
        rect(120, 70, 150, 90),  # 4 negative points inside: dropped
        rect(120, 20, 150, 40),  # 3 negative points inside: kept
    ]
    neg = np.array([[125, 75], [130, 75], [135, 85], [140, 85],
                    [125, 25], [130, 25], [135, 35]], float)
    cands = InstanceCandidates.from_masks(masks)
    gen = SAMPointMaskGenerator(sam=tiny_sam, patch_size=128, min_area=50,
                                border_margin=3, max_neg_inside=3)
    keep = gen._keep(cands, 64, 0, shape, neg)
    assert keep.tolist() == [False, True, True, False, True, False, True]
    gen.border_margin = gen.max_neg_inside = None
    assert gen._keep(cands, 64, 0, shape, neg).all()
    gen.min_area = 150  # areas 140, 100, 120, 60, 100, 600, 600
    assert gen._keep(cands, 64, 0, shape, neg).tolist() == [False] * 5 + [
        True, True]


def test_inputs_and_registry(tiny_sam):
    gen = TASK_UTILS.build(
        dict(type='SAMPointMaskGenerator', arch='tiny', image_size=256,
             patch_size=128, device='cpu'))
    assert gen.points_per_batch == 1 and gen.decoder == 'fast'
    img = np.zeros((64, 64, 3), np.uint8)
    assert len(gen(img, np.zeros((0, 2)), None)) == 0
    with pytest.raises(ValueError, match='uint8'):
        gen(img.astype(np.float32), np.zeros((1, 2)))
    with pytest.raises(ValueError, match='pos_points'):
        gen(img, np.zeros((2, 3)))
    with pytest.raises(ValueError, match='decoder'):
        SAMPointMaskGenerator(sam=tiny_sam, decoder='quick')
    with pytest.raises(TypeError, match='Sam'):
        SAMPointMaskGenerator(sam=torch.nn.Linear(2, 2))


def test_patch_nms_scores_with_the_patch_h_map(tiny_sam):
    """``patch_nms``: each patch's masks are merged and soft-NMS'd with the
    H map of the patch itself (official ``post_process_nms(..., patch_img)``),
    in patch coordinates, and come back in image coordinates."""
    from nucseg.models.postprocessors.soft_nms import (combined_scores,
                                                       hematoxylin_map)
    nms = dict(type='ContainmentAwareSoftNMS')
    gen = SAMPointMaskGenerator(sam=tiny_sam, patch_size=64, patch_nms=nms,
                                smooth_radius=2)
    rng = np.random.default_rng(0)
    image = rng.integers(60, 250, (96, 128, 3), dtype=np.uint8)
    yy, xx = np.mgrid[:96, :128]
    a = (xx - 80)**2 + (yy - 50)**2 <= 36
    b = (xx - 83)**2 + (yy - 50)**2 <= 36  # IoU(a, b) < 0.8: not merged
    far = (xx - 110)**2 + (yy - 80)**2 <= 25
    cands = InstanceCandidates.from_masks([a, b, far], [0.95, 0.6, 0.7])
    left, top = 64, 32
    kept = gen.suppress_in_patch(cands, image, left, top)
    assert kept.image_shape == (96, 128)
    patch = image[top:, left:]
    local = cands.translate((-left, -top), patch.shape[:2])
    want = combined_scores(local, hematoxylin_map(patch))
    # a first; b decays (mask IoU) and may fall below 0.5; far is kept.
    assert np.array_equal(kept.mask(0), a)
    assert kept.scores[0] == pytest.approx(want[0])
    kept_masks = [kept.mask(k) for k in range(len(kept))]
    assert any(np.array_equal(m, far) for m in kept_masks)
    # A whole-image H map would give another score: the patch's is used.
    whole = combined_scores(cands, hematoxylin_map(image))
    assert whole[0] != pytest.approx(want[0])
    with pytest.raises(ValueError, match='return_label_map'):
        SAMPointMaskGenerator(
            sam=tiny_sam, patch_nms=dict(nms, return_label_map=True))
