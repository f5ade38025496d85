"""Robust image and instance-label I/O for the nuclei on-disk convention.

The convention every nucseg data set follows::

    <root>/images/<name>.png   RGB (uint8), any size
    <root>/labels/<name>.png   uint16 instance map, 0 = background,
                               one positive id per nucleus
    <root>/splits/<split>.txt  one <name> per line (optional)

Readers accept what real data sets contain (grey, RGBA, palette, 16-bit and
float images; TIFF with LZW) and convert it to one canonical form, raising
:class:`ImageReadError` / :class:`LabelError` naming the file when they
cannot.

Large images: Pillow refuses images above ~179 megapixels
(``DecompressionBombError``, a guard against tiny files that decode to
huge ones) and warns above ~89 megapixels. Whole-slide tiles and large
microscopy images are legitimately that big, so nucseg lifts Pillow's
guard for its own reads and applies its own, higher limit
:data:`MAX_IMAGE_PIXELS` (2**31 pixels, e.g. 46000 x 46000; raise it if
you have the memory), rejecting bigger files with an
:class:`ImageReadError` that names them.
"""
import os
import os.path as osp
import threading
import warnings
from typing import Tuple, Union

import cv2
import numpy as np
from PIL import Image

PathLike = Union[str, os.PathLike]

__all__ = [
    'ImageReadError', 'LabelError', 'read_image', 'to_rgb_uint8',
    'read_label', 'write_image', 'write_label', 'check_pair', 'image_size',
    'MAX_IMAGE_PIXELS'
]

#: nucseg's limit on the pixels of an image it reads (Pillow's own guard is
#: lifted for nucseg's reads, see the module doc).
MAX_IMAGE_PIXELS = 2**31

_PIL_LIMIT_LOCK = threading.Lock()


class ImageReadError(OSError):
    """An image file is missing, unreadable, truncated or of no known kind."""


class LabelError(ValueError):
    """A label map is unusable (not integer, wrong shape, too many ids)."""


def _check_file(path: str) -> None:
    """Raise :class:`ImageReadError` unless ``path`` is a non-empty file."""
    if not osp.isfile(path):
        if osp.islink(path) and not osp.exists(path):
            raise ImageReadError(
                f'image file is a broken symbolic link: {path} -> '
                f'{os.readlink(path)}')
        if osp.exists(path):
            raise ImageReadError(f'not a regular file: {path}')
        raise ImageReadError(f'image file not found: {path}')
    if osp.getsize(path) == 0:
        raise ImageReadError(f'image file is empty (0 bytes): {path}')


def _open_pil(path: str) -> Image.Image:
    """``Image.open`` with Pillow's size guard replaced by nucseg's.

    Raises:
        ImageReadError: If the image has more than :data:`MAX_IMAGE_PIXELS`
            pixels.
        OSError, SyntaxError, ValueError: As ``Image.open``.
    """
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', Image.DecompressionBombWarning)
        try:
            im = Image.open(path)
        except Image.DecompressionBombError:
            # Deliberately above Pillow's limit: open without its guard
            # (restored at once) and apply nucseg's limit below.
            with _PIL_LIMIT_LOCK:
                saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
                try:
                    im = Image.open(path)
                finally:
                    Image.MAX_IMAGE_PIXELS = saved
    w, h = im.size
    if w * h > MAX_IMAGE_PIXELS:
        im.close()
        raise ImageReadError(
            f'{path}: image of {w}x{h} pixels (WxH) exceeds nucseg\'s limit '
            f'of {MAX_IMAGE_PIXELS} pixels (nucseg.utils.io.'
            'MAX_IMAGE_PIXELS; raise it if you have the memory)')
    return im


def image_size(path: PathLike) -> Tuple[int, int]:
    """``(H, W)`` of an image file, from its header when possible.

    Cheap (no pixel decoding) for the formats Pillow reads; other files are
    decoded.

    Raises:
        ImageReadError: If the file is missing, empty or unreadable.
    """
    path = os.fspath(path)
    _check_file(path)
    try:
        with _open_pil(path) as im:
            w, h = im.size
        return h, w
    except ImageReadError:
        raise
    except (OSError, SyntaxError, ValueError):
        pass  # a format only OpenCV reads: decode it
    return tuple(_decode(path).shape[:2])


def _decode(path: PathLike) -> np.ndarray:
    """Decode a file with all its channels and bit depth, or raise."""
    path = os.fspath(path)
    _check_file(path)
    # Pillow detects truncation reliably (OpenCV may return a partial
    # image with only a warning on stderr), so it decodes first.
    try:
        with _open_pil(path) as im:
            im.load()
            if im.mode == 'P':
                im = im.convert('RGBA' if 'transparency' in im.info else
                                'RGB')
            elif im.mode in ('I;16', 'I;16B', 'I;16L'):
                return np.array(im, dtype=np.uint16)
            elif im.mode == 'CMYK':
                im = im.convert('RGB')
            arr = np.array(im)
        if arr.dtype == bool:
            arr = arr.astype(np.uint8)
        return arr
    except (OSError, SyntaxError, ValueError) as pil_err:
        if isinstance(pil_err, ImageReadError):
            raise
        if 'truncated' in str(pil_err).lower():
            # Not a format question: OpenCV would return the partial
            # pixels of a cut JPEG with only a warning.
            raise ImageReadError(
                f'image file is truncated: {path} ({pil_err})') from pil_err
        arr = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        if arr is None:
            raise ImageReadError(
                f'cannot decode image {path}: {pil_err}') from pil_err
        if arr.ndim == 3:
            code = (cv2.COLOR_BGRA2RGBA
                    if arr.shape[2] == 4 else cv2.COLOR_BGR2RGB)
            arr = cv2.cvtColor(arr, code)
        return arr


def to_rgb_uint8(arr: np.ndarray, name: str = '<array>',
                 alpha: str = 'drop') -> np.ndarray:
    """Convert a decoded image of any common kind to ``HxWx3`` uint8 RGB.

    * grey ``HxW`` or ``HxWx1`` -> replicated to 3 channels;
    * ``HxWx4`` (RGBA) -> with ``alpha='drop'`` the alpha channel is
      dropped (nuclei images carry no useful transparency; a warning is
      issued if alpha is not constant); with ``alpha='white'`` the image is
      composited on white (transparent areas become background, as a
      slide scanner's unscanned regions), with a warning naming the file
      if alpha is not constant;
    * uint16 / int32 / float -> linearly rescaled: integer images by the
      0.01-99.99 percentile range of the image (16-bit microscopy rarely
      fills the full range), float images in ``[0, 1]`` by 255.

    Args:
        arr (np.ndarray): Decoded image, ``HxW`` or ``HxWxC``.
        name (str): File name used in error messages.
        alpha (str): ``'drop'`` or ``'white'`` (see above).

    Returns:
        np.ndarray: ``HxWx3`` uint8 array.
    """
    if alpha not in ('drop', 'white'):
        raise ValueError(f"alpha must be 'drop' or 'white', got {alpha!r}")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim == 3 and arr.shape[2] == 4:
        opacity = arr[..., 3]
        if opacity.min() != opacity.max():
            if alpha == 'white' and arr.dtype == np.uint8:
                warnings.warn(f'{name}: transparent pixels (alpha channel) '
                              'composited on white')
                a = opacity[..., None].astype(np.float32) / 255.0
                arr = (arr[..., :3] * a + 255.0 * (1 - a) + 0.5).astype(
                    np.uint8)
            else:
                warnings.warn(
                    f'{name}: dropping a non-constant alpha channel')
        arr = arr[..., :3]
    if arr.ndim == 3 and arr.shape[2] == 2:
        arr = arr[..., 0]  # grey + alpha
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] != 3):
        raise ImageReadError(
            f'{name}: unsupported image shape {arr.shape}; expected HxW, '
            'HxWx3 or HxWx4')
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ImageReadError(f'{name}: image has zero size {arr.shape}')
    if arr.dtype != np.uint8:
        a = arr.astype(np.float64)
        if not np.isfinite(a).all():
            raise ImageReadError(f'{name}: image contains NaN or inf')
        if np.issubdtype(arr.dtype, np.floating) and a.min() >= 0 \
                and a.max() <= 1.0:
            lo, hi = 0.0, 1.0
        else:
            lo, hi = np.percentile(a, (0.01, 99.99))
        if hi <= lo:
            hi = lo + 1.0
        arr = np.clip((a - lo) / (hi - lo) * 255.0 + 0.5, 0,
                      255).astype(np.uint8)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    return np.ascontiguousarray(arr)


def read_image(path: PathLike, alpha: str = 'drop') -> np.ndarray:
    """Read an image file as ``HxWx3`` uint8 RGB.

    Args:
        path: Image file (PNG, TIFF incl. LZW, JPEG, BMP, ...).
        alpha (str): ``'drop'`` or ``'white'``: what to do with an alpha
            channel (see :func:`to_rgb_uint8`).

    Returns:
        np.ndarray: ``HxWx3`` uint8 RGB image.

    Raises:
        ImageReadError: If the file is missing, empty, truncated, cannot be
            decoded or has an unsupported layout; the message names it.
    """
    return to_rgb_uint8(_decode(path), name=os.fspath(path),
                        alpha=alpha)


def read_label(path: PathLike) -> np.ndarray:
    """Read an instance label map as ``HxW`` int32.

    Accepts single-channel integer images (uint8/uint16/int32) and
    3-channel images whose channels are identical (labels saved as RGB by
    some tools). Anything else is rejected rather than guessed.

    Raises:
        ImageReadError: If the file cannot be read.
        LabelError: If the content is not an integer, single-channel map.
    """
    arr = _decode(path)
    name = os.fspath(path)
    if arr.ndim == 3:
        if arr.shape[2] == 4:
            arr = arr[..., :3]
        if arr.shape[2] == 1 or (np.all(arr == arr[..., :1])):
            arr = arr[..., 0]
        else:
            raise LabelError(
                f'{name}: label map has {arr.shape[2]} differing channels; '
                'expected a single-channel instance map (0 = background)')
    if not np.issubdtype(arr.dtype, np.integer) and arr.dtype != bool:
        if np.issubdtype(arr.dtype, np.floating) and np.all(
                np.isfinite(arr)) and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        else:
            raise LabelError(
                f'{name}: label map has dtype {arr.dtype} with non-integer '
                'values; expected integer instance ids')
    if arr.min() < 0:
        raise LabelError(f'{name}: label map has negative ids')
    if arr.max() > np.iinfo(np.int32).max:
        raise LabelError(f'{name}: label ids exceed int32')
    return arr.astype(np.int32)


def write_image(path: PathLike, img: np.ndarray) -> None:
    """Write an ``HxWx3`` uint8 RGB image (PNG by extension)."""
    img = to_rgb_uint8(np.asarray(img), name=os.fspath(path))
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    if not cv2.imwrite(os.fspath(path), cv2.cvtColor(img,
                                                     cv2.COLOR_RGB2BGR)):
        raise ImageReadError(f'could not write image {path}')


def write_label(path: PathLike, label: np.ndarray) -> None:
    """Write an instance map as a uint16 PNG (ids must be < 65536)."""
    label = np.asarray(label)
    if label.ndim != 2:
        raise LabelError(f'{path}: label must be HxW, got {label.shape}')
    if not np.issubdtype(label.dtype, np.integer):
        raise LabelError(f'{path}: label must be integer, got {label.dtype}')
    if label.size and (label.min() < 0 or label.max() > 65535):
        raise LabelError(
            f'{path}: ids must be in [0, 65535] for a uint16 PNG, got '
            f'[{label.min()}, {label.max()}]')
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    if not cv2.imwrite(os.fspath(path), label.astype(np.uint16)):
        raise ImageReadError(f'could not write label {path}')


def check_pair(img: np.ndarray, label: np.ndarray, img_path: str,
               label_path: str) -> None:
    """Raise :class:`LabelError` if image and label sizes differ."""
    if img.shape[:2] != label.shape[:2]:
        raise LabelError(
            f'image/label size mismatch: {img_path} is '
            f'{img.shape[1]}x{img.shape[0]} (WxH) but {label_path} is '
            f'{label.shape[1]}x{label.shape[0]}')
