import pytest
import torch
import torch.nn.functional as F
from torch import nn

import nucseg.models.extractors.filter_bank  # noqa: F401 (registers)
from nucseg.models.extractors.tiled import TiledExtractor, tile_origins
from nucseg.registry import MODELS


class PoolConv(nn.Module):
    """Translation-equivariant stand-in: 1x1 conv + 4x4 average pool."""

    stride = 4
    out_channels = 5

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 5, 1)

    def forward(self, x):
        return F.avg_pool2d(self.conv(x / 255.0), 4)


class Ones(nn.Module):
    """Constant output on an 8x8 grid."""

    def forward(self, x):
        return x.new_ones(x.shape[0], 2, x.shape[-2] // 8, x.shape[-1] // 8)


class TileMean(nn.Module):
    """Each tile's output is the tile's mean red value, on an 8x8 grid."""

    def forward(self, x):
        m = x[:, :1].mean((2, 3), keepdim=True)
        return m.expand(-1, 1, x.shape[-2] // 8, x.shape[-1] // 8)


def test_tile_origins():
    assert tile_origins(50, 128, 64) == [0]
    assert tile_origins(128, 128, 64) == [0]
    assert tile_origins(129, 128, 64) == [0, 64]
    assert tile_origins(256, 128, 64) == [0, 64, 128]


@pytest.mark.parametrize('size', [(256, 192), (200, 150)])
def test_equivariant_backbone_tiled_equals_untiled(size):
    torch.manual_seed(1)
    img = torch.rand(2, 3, *size) * 255
    bb = PoolConv()
    m = TiledExtractor(bb, tile=128, tile_stride=64, tiles_per_batch=3)
    assert m.stride == 4 and m.cells == 32 and m.out_channels == 5
    with torch.no_grad():
        out = m(img)
        ref = bb(img)  # floor: complete cells only
    assert out.shape == (2, 5, -(-size[0] // 4), -(-size[1] // 4))
    h, w = ref.shape[-2:]
    torch.testing.assert_close(out[..., :h, :w], ref, rtol=1e-5, atol=1e-5)


def test_small_image_is_padded_to_one_tile():
    img = torch.rand(1, 3, 50, 70) * 255
    bb = PoolConv()
    m = TiledExtractor(bb, pad_mode='constant')
    with torch.no_grad():
        out = m(img)
        ref = bb(img)
    assert out.shape == (1, 5, 13, 18)
    torch.testing.assert_close(out[..., :12, :17], ref)
    assert m.overlap_counts(50, 70).eq(1).all()


def test_overlap_counts_and_exact_averaging():
    m = TiledExtractor(TileMean(), tile=32, tile_stride=16)
    assert m.stride == 8 and m.cells == 4  # probed
    counts = m.overlap_counts(64, 48)
    row = torch.tensor([1., 1, 2, 2, 2, 2, 1, 1])
    col = torch.tensor([1., 1, 2, 2, 1, 1])
    torch.testing.assert_close(counts, row[:, None] * col[None])
    torch.manual_seed(2)
    img = torch.rand(1, 3, 64, 48) * 255
    out = m(img)
    # Expected: mean over covering tiles of each tile's mean red value.
    exp = torch.zeros(8, 6)
    for y in (0, 16, 32):
        for x in (0, 16):
            v = img[0, 0, y:y + 32, x:x + 32].mean()
            exp[y // 8:y // 8 + 4, x // 8:x // 8 + 4] += v
    torch.testing.assert_close(out[0, 0], exp / counts)
    # A constant backbone output stays constant after averaging.
    ones = TiledExtractor(Ones(), tile=32, tile_stride=16)
    torch.testing.assert_close(ones(img), torch.ones(1, 2, 8, 6))


def test_build_from_config():
    m = MODELS.build(dict(
        type='TiledExtractor', tile=32, tile_stride=16,
        backbone=dict(type='FilterBankExtractor', sigmas=(1.0, ))))
    assert m.stride == 4 and m.out_channels == 16
    assert m(torch.rand(1, 3, 40, 36) * 255).shape == (1, 16, 10, 9)


def test_input_size_resizes_tiles_and_sets_stride():
    m = TiledExtractor(PoolConv(), tile=32, tile_stride=16, input_size=64)
    assert m.cells == 16 and m.stride == 2
    assert m(torch.rand(1, 3, 40, 40) * 255).shape == (1, 5, 20, 20)


def test_sam_tiny_encoder_tiles():
    from nucseg.models.utils.sam import build_sam_image_encoder

    class SamWrap(nn.Module):
        stride = 16

        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.enc = build_sam_image_encoder('tiny', image_size=128)

        def forward(self, x):
            return self.enc((x - 128.0) / 64.0)

    m = TiledExtractor(SamWrap(), tile=64, tile_stride=32, input_size=128,
                       tiles_per_batch=4)
    assert m.stride == 8
    with torch.no_grad():
        out = m(torch.rand(1, 3, 80, 72) * 255)
    assert out.shape == (1, 256, 10, 9) and torch.isfinite(out).all()


def test_invalid_configs():
    with pytest.raises(ValueError, match='tile_stride'):
        TiledExtractor(PoolConv(), tile=64, tile_stride=128)
    with pytest.raises(ValueError, match='multiple of the feature cell'):
        TiledExtractor(PoolConv(), tile=64, tile_stride=30)
    with pytest.raises(ValueError, match='pad_mode'):
        TiledExtractor(PoolConv(), pad_mode='wrap')
    with pytest.raises(ValueError, match='B x 3 x H x W'):
        TiledExtractor(PoolConv())(torch.zeros(1, 4, 8, 8))
