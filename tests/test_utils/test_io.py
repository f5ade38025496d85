import cv2
import numpy as np
import pytest
from PIL import Image

from nucseg.utils.io import (ImageReadError, LabelError, check_pair,
                             read_image, read_label, to_rgb_uint8,
                             write_image, write_label)


def test_rgb_png_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (17, 23, 3), dtype=np.uint8)
    write_image(tmp_path / 'a.png', img)
    out = read_image(tmp_path / 'a.png')
    assert out.dtype == np.uint8 and out.shape == (17, 23, 3)
    np.testing.assert_array_equal(out, img)  # RGB order preserved


def test_grey_rgba_palette_16bit(tmp_path):
    grey = np.arange(64, dtype=np.uint8).reshape(8, 8)
    Image.fromarray(grey).save(tmp_path / 'g.png')
    out = read_image(tmp_path / 'g.png')
    assert out.shape == (8, 8, 3)
    np.testing.assert_array_equal(out[..., 0], grey)
    np.testing.assert_array_equal(out[..., 2], grey)

    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[..., 3] = 255
    Image.fromarray(rgba).save(tmp_path / 'rgba.png')
    out = read_image(tmp_path / 'rgba.png')
    assert out.shape == (8, 8, 3) and (out[..., 0] == 200).all()

    pal = Image.fromarray(grey).convert('P')
    pal.save(tmp_path / 'p.png')
    assert read_image(tmp_path / 'p.png').shape == (8, 8, 3)

    deep = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000)
    cv2.imwrite(str(tmp_path / 'd16.png'), deep)
    cv2.imwrite(str(tmp_path / 'd16.tif'), deep)
    for name in ('d16.png', 'd16.tif'):
        out = read_image(tmp_path / name)
        assert out.dtype == np.uint8 and out.shape == (8, 8, 3)
        # Monotone rescaling of the 16-bit range to 0..255.
        assert out[0, 0, 0] == 0 and out[-1, -1, 0] == 255
        assert (np.diff(out[..., 0].ravel().astype(int)) >= 0).all()


def test_float_image_in_unit_range():
    img = np.full((4, 4), 0.5, np.float32)
    out = to_rgb_uint8(img)
    assert (out == 128).all()
    with pytest.raises(ImageReadError, match='NaN'):
        to_rgb_uint8(np.full((4, 4), np.nan, np.float32), name='x.tif')


def test_unreadable_images_name_the_file(tmp_path):
    with pytest.raises(ImageReadError, match='missing.png'):
        read_image(tmp_path / 'missing.png')
    (tmp_path / 'empty.png').write_bytes(b'')
    with pytest.raises(ImageReadError, match='empty.png'):
        read_image(tmp_path / 'empty.png')
    (tmp_path / 'junk.png').write_bytes(b'not an image at all')
    with pytest.raises(ImageReadError, match='junk.png'):
        read_image(tmp_path / 'junk.png')
    # A truncated PNG: first half of a valid file.
    img = np.random.default_rng(1).integers(0, 256, (64, 64, 3), np.uint8)
    write_image(tmp_path / 'full.png', img)
    data = (tmp_path / 'full.png').read_bytes()
    (tmp_path / 'trunc.png').write_bytes(data[:len(data) // 2])
    with pytest.raises(ImageReadError, match='trunc.png'):
        read_image(tmp_path / 'trunc.png')


def test_label_round_trip_and_validation(tmp_path):
    lab = np.zeros((10, 12), np.int32)
    lab[2:5, 2:5] = 3
    lab[6:9, 6:11] = 70000 - 4465  # > 255, < 65536
    write_label(tmp_path / 'l.png', lab)
    out = read_label(tmp_path / 'l.png')
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out, lab)

    with pytest.raises(LabelError, match='65535'):
        write_label(tmp_path / 'big.png', np.full((2, 2), 70000))
    with pytest.raises(LabelError, match='integer'):
        write_label(tmp_path / 'f.png', np.zeros((2, 2), np.float32))

    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[0, 0] = (1, 2, 3)
    Image.fromarray(rgb).save(tmp_path / 'rgb.png')
    with pytest.raises(LabelError, match='rgb.png'):
        read_label(tmp_path / 'rgb.png')
    same = np.repeat(lab[..., None].clip(0, 255).astype(np.uint8), 3, 2)
    Image.fromarray(same).save(tmp_path / 'same.png')
    assert read_label(tmp_path / 'same.png').shape == (10, 12)

    cv2.imwrite(str(tmp_path / 'float.tif'),
                np.full((3, 3), 0.5, np.float32))
    with pytest.raises(LabelError, match='float.tif'):
        read_label(tmp_path / 'float.tif')


def test_check_pair_names_both_files():
    with pytest.raises(LabelError, match='img.png.*lab.png'):
        check_pair(np.zeros((4, 5, 3)), np.zeros((4, 6)), 'img.png',
                   'lab.png')
    check_pair(np.zeros((4, 5, 3)), np.zeros((4, 5)), 'a', 'b')


# ------------------------------------------------------- large images
def test_pil_decompression_bomb_guard_is_replaced_by_nucseg_limit(
        tmp_path, monkeypatch):
    """Pillow raises DecompressionBombError above 2x its MAX_IMAGE_PIXELS
    (a 19000x19000 PNG); here its threshold is lowered so that a small
    image takes the same path. nucseg reads it, leaves Pillow's setting
    as it was, and enforces its own (higher) limit by file name."""
    import nucseg.utils.io as nio
    img = np.full((60, 50, 3), 7, np.uint8)
    write_image(tmp_path / 'big.png', img)
    monkeypatch.setattr(Image, 'MAX_IMAGE_PIXELS', 1000)
    with pytest.raises(Image.DecompressionBombError):
        Image.open(tmp_path / 'big.png')  # what used to escape uncaught
    np.testing.assert_array_equal(read_image(tmp_path / 'big.png'), img)
    assert Image.MAX_IMAGE_PIXELS == 1000  # restored
    assert nio.image_size(tmp_path / 'big.png') == (60, 50)
    monkeypatch.setattr(nio, 'MAX_IMAGE_PIXELS', 2000)
    with pytest.raises(ImageReadError, match=r'big\.png.*50x60.*limit'):
        read_image(tmp_path / 'big.png')


def test_genuinely_large_image_reads(tmp_path):
    """8000x8000 (64 Mpx, grey, cheap to write) reads without Pillow's
    warning turning into a failure."""
    grey = np.zeros((8000, 8000), np.uint8)
    grey[::1000, :] = 255
    Image.fromarray(grey).save(tmp_path / 'large.png', compress_level=1)
    del grey
    img = read_image(tmp_path / 'large.png')
    assert img.shape == (8000, 8000, 3) and img[1000, 5, 0] == 255


def test_image_size_reads_headers_and_names_bad_files(tmp_path):
    from nucseg.utils.io import image_size
    write_image(tmp_path / 'a.png', np.zeros((5, 9, 3), np.uint8))
    assert image_size(tmp_path / 'a.png') == (5, 9)
    (tmp_path / 'b.png').write_bytes(b'not an image')
    with pytest.raises(ImageReadError, match=r'b\.png'):
        image_size(tmp_path / 'b.png')
    (tmp_path / 'link.png').symlink_to(tmp_path / 'gone.png')
    with pytest.raises(ImageReadError, match='broken symbolic link'):
        read_image(tmp_path / 'link.png')


def test_truncated_jpeg_is_not_half_read(tmp_path):
    """Pillow reports the cut; OpenCV would decode the partial pixels with
    only a warning, so there is no fallback for truncated files."""
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (32, 40, 3), np.uint8)).save(
        tmp_path / 'a.jpg', quality=90)
    data = (tmp_path / 'a.jpg').read_bytes()
    (tmp_path / 'cut.jpg').write_bytes(data[:len(data) // 2])
    with pytest.raises(ImageReadError, match=r'truncated.*cut\.jpg'):
        read_image(tmp_path / 'cut.jpg')
