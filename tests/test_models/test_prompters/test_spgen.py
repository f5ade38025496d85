import math

import pytest
import torch
from torch import nn

from nucseg.models.prompters.spgen import SPGen
from nucseg.models.utils.sam import build_sam_prompt_encoder
from nucseg.registry import MODELS


def test_shapes():
    torch.manual_seed(0)
    spgen = MODELS.build(dict(type='SPGen'))
    assert isinstance(spgen, SPGen)
    assert spgen(torch.randn(2, 256, 8, 8)).shape == (2, 1, 32, 32)
    assert spgen(torch.randn(1, 256, 64, 64)).shape == (1, 1, 256, 256)


def test_forward_is_sum_of_unsam_branches():
    torch.manual_seed(0)
    spgen = SPGen(in_channels=32)
    feat = torch.randn(2, 32, 8, 8)
    up = {
        s: nn.Upsample(scale_factor=s, mode='bilinear', align_corners=True)
        for s in (2, 4, 8)
    }
    b1 = up[8](spgen.pool_branch[1](nn.functional.max_pool2d(feat, 2)))
    b2 = up[4](spgen.neck_branch(feat))
    b3 = up[2](spgen.up2_branch(feat))
    b4 = spgen.up4_branch(feat)
    torch.testing.assert_close(spgen(feat), b1 + b2 + b3 + b4)
    # branch layout of UN-SAM's SPGen
    assert spgen.up2_branch[0].out_channels == 64
    assert spgen.up4_branch[3].out_channels == 16
    assert spgen.up4_branch[4].in_channels == 16


def test_mask_prompt_threshold():
    spgen = SPGen()
    edge = math.log(0.95 / 0.05)  # sigmoid(edge) = 0.95
    logit = torch.tensor([edge + 1e-3, edge - 1e-3, 10.0, -3.0,
                          0.0]).view(1, 1, 1, 5).requires_grad_(True)
    prompt = spgen.mask_prompt(logit)
    assert torch.equal(prompt.flatten(), torch.tensor([1., 0., 1., 0., 0.]))
    assert not prompt.requires_grad and prompt.dtype == torch.float32
    # fits SAM's prompt encoder: B x 1 x 4h x 4w for an h x w embedding
    pe = build_sam_prompt_encoder(image_size=128)
    coarse = spgen(torch.randn(2, 256, 8, 8))
    sparse, dense = pe(points=None, boxes=None,
                       masks=spgen.mask_prompt(coarse))
    assert dense.shape == (2, 256, 8, 8) and sparse.shape == (2, 0, 256)


def test_loss_hand_computation():
    spgen = SPGen()
    logit = torch.tensor([[1.0, -2.0], [0.5, 3.0]]).view(1, 1, 2, 2)
    # 4 x 4 label; legacy nearest x0.5 picks rows/cols 0 and 2
    gt = torch.tensor([[1, 0, 0, 0], [0, 0, 0, 0], [0, 1, 1, 1],
                       [0, 0, 0, 0]])[None]
    picked = [1, 0, 0, 1]
    vals = [1.0, -2.0, 0.5, 3.0]
    bce = [-(t * math.log(1 / (1 + math.exp(-z))) +
             (1 - t) * math.log(1 - 1 / (1 + math.exp(-z))))
           for z, t in zip(vals, picked)]
    out = spgen.loss(logit, gt)
    assert out.item() == pytest.approx(sum(bce) / 4, rel=1e-6)
    assert spgen.loss(logit, gt[:, None]).item() == pytest.approx(
        out.item())
    # ignored pixels drop out of the mean
    gt_ign = gt.clone()
    gt_ign[0, 2, 2] = 255
    assert spgen.loss(logit, gt_ign).item() == pytest.approx(
        sum(bce[:3]) / 3, rel=1e-6)


def test_bad_input():
    spgen = SPGen()
    with pytest.raises(ValueError, match='feat'):
        spgen(torch.randn(1, 128, 8, 8))
    with pytest.raises(ValueError, match='gt'):
        spgen.loss(torch.zeros(2, 1, 4, 4), torch.zeros(1, 16, 16))
    with pytest.raises(ValueError, match='0/1'):
        spgen.loss(torch.zeros(1, 1, 2, 2), torch.full((1, 4, 4), 2))
    with pytest.raises(ValueError, match='threshold'):
        SPGen(threshold=1.5)
