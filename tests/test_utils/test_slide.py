"""Image/slide sources, pixel sizes and tissue detection (issue 13)."""
import warnings

import numpy as np
import pytest
from PIL import Image

from nucseg.utils.io import ImageReadError, to_rgb_uint8
from nucseg.utils.slide import (ArraySource, OpenSlideSource, SlideReadError,
                                TiffSlideSource, detect_tissue,
                                open_image_source)
from ..test_apis.synthetic_slides import synthetic_slide, write_pyramid


@pytest.fixture(scope='module')
def slide(tmp_path_factory):
    img, _ = synthetic_slide(0, tissue=256, margin=(64, 160))
    path = tmp_path_factory.mktemp('slide') / 'slide.tif'
    write_pyramid(path, img, mpp=0.125, levels=3, tile=64)
    return path, img


def test_pyramidal_tiff_with_both_readers(slide):
    path, img = slide
    src = open_image_source(path)
    assert isinstance(src, OpenSlideSource) and src.is_slide
    assert src.mpp == pytest.approx(0.125) and 'metadata' in src.mpp_source
    assert src.level_dimensions == [(576, 384), (288, 192), (144, 96)]
    np.testing.assert_array_equal(src.read_region(0, 100, 50, 40, 30),
                                  img[50:80, 100:140])
    # Out of bounds: white.
    edge = src.read_region(0, 560, 370, 32, 32)
    assert (edge[14:, :] == 255).all() and (edge[:, 16:] == 255).all()
    # Level nearest a target downsample, never coarser than asked.
    assert [src.best_level(d) for d in (1, 1.9, 2, 3.9, 4, 10)] == [
        0, 0, 1, 1, 2, 2]
    thumb, down = src.thumbnail(72)
    assert max(thumb.shape[:2]) == 72 and down == pytest.approx(8)
    # tiffslide reads the same pixels and pixel size.
    other = TiffSlideSource(path)
    assert other.mpp == pytest.approx(0.125)
    assert other.level_dimensions == src.level_dimensions
    np.testing.assert_array_equal(other.read_region(1, 30, 20, 50, 40),
                                  src.read_region(1, 30, 20, 50, 40))
    src.close()
    other.close()


def test_tissue_detection_finds_the_tissue_not_the_glass(slide):
    path, img = slide
    with open_image_source(path) as src:
        thumb, down = src.thumbnail(144)
    mask = detect_tissue(thumb)
    # The tissue spans 256 x 256 of 576 x 384 level-0 px.
    assert mask.mean() == pytest.approx(256 * 256 / (576 * 384), abs=0.05)
    assert not mask[:4].any() and not mask[:, :10].any()
    assert not detect_tissue(np.full((50, 80, 3), 245, np.uint8)).any()


def test_pixel_size_from_metadata(tmp_path):
    arr = np.zeros((20, 30, 3), np.uint8)
    Image.fromarray(arr).save(tmp_path / 'dpi72.png', dpi=(72, 72))
    Image.fromarray(arr).save(tmp_path / 'res.tif',
                              dpi=(25400 / 0.5, 25400 / 0.5))
    src = open_image_source(tmp_path / 'dpi72.png')
    assert isinstance(src, ArraySource) and src.mpp is None  # 352 um/px
    assert open_image_source(tmp_path / 'res.tif').mpp == pytest.approx(0.5)
    given = open_image_source(tmp_path / 'res.tif', mpp=0.3)
    assert given.mpp == 0.3 and '--mpp' in given.mpp_source


def test_unreadable_slide_is_named(tmp_path):
    bad = tmp_path / 'broken.svs'
    bad.write_bytes(b'II*\x00' + b'\x00' * 64)
    with pytest.raises(SlideReadError, match='broken.svs'):
        open_image_source(bad)
    text = tmp_path / 'notes.ndpi'
    text.write_text('not a slide')
    with pytest.raises(ImageReadError, match='notes.ndpi'):
        open_image_source(text)
    with pytest.raises(ImageReadError, match='empty'):
        (tmp_path / 'empty.tif').write_bytes(b'')
        open_image_source(tmp_path / 'empty.tif')


def test_alpha_is_composited_on_white_with_a_warning(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., :3] = 10
    rgba[:2, :, 3] = 255  # top half opaque, bottom transparent
    with pytest.warns(UserWarning, match='alpha.png.*composited on white'):
        out = to_rgb_uint8(rgba, 'alpha.png', alpha='white')
    assert (out[:2] == 10).all() and (out[2:] == 255).all()
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        assert (to_rgb_uint8(np.full((2, 2, 4), 255, np.uint8), 'x',
                             alpha='white') == 255).all()
    Image.fromarray(rgba).save(tmp_path / 'alpha.png')
    src = open_image_source(tmp_path / 'alpha.png')
    assert (src.read_region(0, 0, 0, 4, 4)[2:] == 255).all()
    assert any('composited on white' in n for n in src.notes)
