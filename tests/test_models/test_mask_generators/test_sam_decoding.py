"""SharedImageDecoding and windowed upsampling against segment_anything."""
import numpy as np
import pytest
import torch

from nucseg.models.mask_generators.sam_decoding import (SharedImageDecoding,
                                                        logits_to_masks)
from nucseg.models.utils.sam import build_sam


def _prompts(sam, n, seed=0):
    g = torch.Generator().manual_seed(seed)
    pts = torch.rand(n, 3, 2, generator=g) * 256
    labels = torch.tensor([[1, 0, 0]] * n, dtype=torch.int)
    return sam.prompt_encoder(points=(pts, labels), boxes=None, masks=None)


def _sam_decode(sam, features, sparse, dense, multimask):
    low, iou = sam.mask_decoder(
        image_embeddings=features,
        image_pe=sam.prompt_encoder.get_dense_pe(),
        sparse_prompt_embeddings=sparse,
        dense_prompt_embeddings=dense,
        multimask_output=multimask)
    if multimask:
        best = iou.argmax(1)
        rows = torch.arange(len(best))
        return low[rows, best][:, None], iou[rows, best]
    return low, iou[:, 0]


@pytest.mark.parametrize('multimask', [False, True])
def test_shared_decoding_matches_sam(tiny_sam, multimask):
    sam = tiny_sam
    with torch.inference_mode():
        g = torch.Generator().manual_seed(1)
        features = torch.randn(1, 256, 16, 16, generator=g)
        exact = SharedImageDecoding(sam, features, exact=True)
        fast = SharedImageDecoding(sam, features, exact=False)
        sparse, dense = _prompts(sam, 4)
        for k in range(4):  # batch of one: bit-identical
            ref = _sam_decode(sam, features, sparse[k:k + 1],
                              dense[k:k + 1], multimask)
            out = exact(sparse[k:k + 1], multimask)
            assert torch.equal(out[0], ref[0])
            assert torch.equal(out[1], ref[1])
        ref = _sam_decode(sam, features, sparse, dense, multimask)
        for dec in (exact, fast):
            low, iou = dec(sparse, multimask)
            assert low.shape == ref[0].shape == (4, 1, 64, 64)
            torch.testing.assert_close(low, ref[0], atol=1e-4, rtol=1e-4)
            torch.testing.assert_close(iou, ref[1], atol=1e-5, rtol=1e-5)
        # The fast path is not the exact path bit for bit.
        assert not torch.equal(fast(sparse, multimask)[0], ref[0])


@pytest.mark.parametrize('img_size,size', [(256, 128), (256, 64),
                                           (256, 512), (1024, 512),
                                           (256, 96)])
def test_windowed_upsampling_equals_full(img_size, size):
    sam = build_sam('tiny', image_size=img_size)
    low_size = img_size // 4
    g = torch.Generator().manual_seed(img_size + size)
    noise = torch.randn(6, 1, low_size, low_size, generator=g)
    # Smooth blobs of various sizes, plus an empty and a full mask.
    low = torch.nn.functional.avg_pool2d(noise, 7, 1, 3) * 6 - 1.2
    low[4] = -1.0
    low[5] = 1.0
    boxes, crops = logits_to_masks(sam, low, (img_size, img_size),
                                   (size, size))
    full = (sam.postprocess_masks(low, (img_size, img_size),
                                  (size, size)) > 0)[:, 0].numpy()
    assert full[:4].any() and not full[4].any() and full[5].all()
    for k in range(6):
        m = np.zeros((size, size), bool)
        x0, y0, x1, y1 = boxes[k]
        m[y0:y1, x0:x1] = crops[k]
        np.testing.assert_array_equal(m, full[k])
    # Tight boxes.
    assert crops[0][0].any() and crops[0][-1].any()
    assert crops[0][:, 0].any() and crops[0][:, -1].any()
