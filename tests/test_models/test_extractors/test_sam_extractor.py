import torch

from nucseg.models.extractors import SAMExtractor, TiledExtractor
from nucseg.models.utils import SAM_PIXEL_MEAN, SAM_PIXEL_STD


def test_sam_extractor_normalises_and_matches_encoder():
    torch.manual_seed(0)
    ext = SAMExtractor(arch='tiny', image_size=64, attn_impl='native')
    assert ext.stride == 16 and ext.out_channels == 256
    assert not any(p.requires_grad for p in ext.parameters())
    img = torch.rand(2, 3, 64, 64) * 255
    mean = torch.tensor(SAM_PIXEL_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(SAM_PIXEL_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        ref = ext.encoder((img - mean) / std)[0]
        out = ext(img)
    assert out.shape == (2, 256, 4, 4)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


def test_sam_extractor_in_tiles_gives_two_pixel_cells():
    torch.manual_seed(0)
    tiled = TiledExtractor(
        backbone=dict(type='SAMExtractor', arch='tiny', image_size=64),
        tile=32, tile_stride=16, input_size=64)
    assert tiled.stride == 8  # 32 px tiles resized to 64 -> 4x4 cells
    with torch.no_grad():
        out = tiled(torch.rand(1, 3, 70, 50) * 255)
    assert out.shape == (1, 256, 9, 7)
    assert torch.isfinite(out).all()
