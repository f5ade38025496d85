"""PDAM discriminators: output shapes of paper Tables 1-2, fusion."""
import pytest
import torch

from nucseg.models.discriminators import (PatchDiscriminator,
                                          PDAMImageDiscriminator,
                                          PDAMInstanceDiscriminator,
                                          PDAMSemanticDiscriminator)


def _fpn(size=256, channels=256, levels=(4, 8, 16, 32)):
    return [torch.randn(1, channels, size // s, size // s) for s in levels]


def test_image_level_table1_shapes():
    disc = PDAMImageDiscriminator()
    feats = _fpn()
    pooled = disc.pool_and_sum(feats)
    assert pooled.shape == (1, 256, 8, 8)  # P2-P4 pooled to P5 (8x8)
    # the pooled sum equals P5 plus the block means of the finer levels
    expect = feats[3] + sum(
        f.reshape(1, 256, 8, f.shape[2] // 8, 8, f.shape[3] // 8).mean(
            (3, 5)) for f in feats[:3])
    assert torch.allclose(pooled, expect, atol=1e-5)
    convs = [m for m in disc.convs if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size) for c in convs] \
        == [(256, 256, (3, 3)), (256, 512, (3, 3)), (512, 512, (3, 3)),
            (512, 2, (1, 1))]
    x = pooled
    for layer in disc.convs:
        x = layer(x)
        if isinstance(layer, torch.nn.Conv2d):
            assert x.shape[-2:] == (8, 8)  # Table 1: every block 8x8
    assert disc(feats).shape == (1, 2, 8, 8)
    with pytest.raises(ValueError, match='B x 256'):
        disc(torch.zeros(1, 16, 8, 8))


def test_semantic_level_table2_shapes():
    disc = PDAMSemanticDiscriminator()
    x = torch.rand(1, 2, 256, 256)
    sizes = []
    for layer in disc.layers:
        x = layer(x)
        if isinstance(layer, torch.nn.Conv2d):
            sizes.append(tuple(x.shape[1:]))
    # C1..C4 (residual blocks keep the size), then C5
    assert sizes == [(64, 128, 128), (128, 64, 64), (256, 32, 32),
                     (512, 16, 16), (2, 16, 16)]
    kernels = [m.kernel_size[0] for m in disc.layers
               if isinstance(m, torch.nn.Conv2d)]
    assert kernels == [7, 5, 5, 5, 1]
    assert disc(torch.rand(2, 2, 256, 256)).shape == (2, 2, 16, 16)


def test_instance_level_fusion_and_fcs():
    disc = PDAMInstanceDiscriminator().eval()
    box = torch.randn(5, 1024)
    mask = torch.randn(5, 256, 14, 14)
    fused = disc.fuse(box, mask)
    pooled = mask.reshape(5, 256, 2, 7, 2, 7).mean((3, 5)).flatten(1)
    assert torch.allclose(fused, box + pooled, atol=1e-5)
    linears = [m for m in disc.fcs if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [
        (1024, 1024), (1024, 256), (256, 1)]
    drops = [m.p for m in disc.fcs if isinstance(m, torch.nn.Dropout)]
    assert drops == [0.5, 0.5]
    assert disc(fused).shape == (5, )
    with pytest.raises(ValueError, match='N x 1024'):
        disc.fuse(box[:, :512], mask)


def test_patch_discriminator_70x70():
    disc = PatchDiscriminator()
    assert disc(torch.rand(1, 3, 256, 256)).shape == (1, 1, 30, 30)
