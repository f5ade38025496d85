"""Lazy readers for large images and whole-slide images, tissue detection.

Every input of the tiled inferencer (:mod:`nucseg.apis.tiled_inference`)
is opened as an :class:`ImageSource`: a pyramid of levels (level 0 = full
resolution) from which RGB regions are read on demand, plus the pixel size
in microns (``mpp``) when the file states it. Three readers stand behind
:func:`open_image_source`:

* :class:`OpenSlideSource` -- ``openslide-python`` with the
  ``openslide-bin`` library: vendor slide formats (SVS, NDPI, MRXS, SCN,
  BIF, VMS ...) and tiled pyramidal TIFF, read tile by tile;
* :class:`TiffSlideSource` -- ``tiffslide`` (tifffile + zarr): other 8-bit
  TIFF files (striped, or pyramids OpenSlide does not recognise), read
  chunk by chunk;
* :class:`ArraySource` -- everything else (PNG, JPEG, BMP, 16-bit or float
  TIFF): decoded at once by :func:`nucseg.utils.io.read_image`.

The pixel size comes from the slide's properties (``openslide.mpp-x``,
``tiffslide.mpp-x``: the TIFF resolution tags or the vendor's metadata),
from ``openslide.objective-power`` (``10 / power`` um/px, with a note) or
from a TIFF/PNG resolution in a plausible range (0.05-20 um/px; the 72 or
96 dpi that image editors write are ignored).

Tissue detection (:func:`detect_tissue`) thresholds the saturation of a
thumbnail with Otsu (background glass is unsaturated), above a minimum
saturation so that a blank slide yields no tissue.
"""
import os
import os.path as osp
import warnings
from typing import List, Optional, Tuple, Union

import cv2
import numpy as np
from scipy import ndimage as ndi
from skimage.filters import threshold_otsu

from .io import ImageReadError, _check_file, read_image, to_rgb_uint8

__all__ = [
    'SlideReadError', 'ImageSource', 'ArraySource', 'OpenSlideSource',
    'TiffSlideSource', 'open_image_source', 'detect_tissue',
    'SLIDE_SUFFIXES', 'MPP_RANGE', 'plausible_mpp'
]

PathLike = Union[str, os.PathLike]

#: Suffixes of whole-slide formats (listed as inputs of a folder).
SLIDE_SUFFIXES = ('.svs', '.ndpi', '.mrxs', '.scn', '.bif', '.vms', '.vmu',
                  '.svslide', '.tif', '.tiff')
#: Pixel sizes (um/px) accepted from file metadata.
MPP_RANGE = (0.05, 20.0)


class SlideReadError(ImageReadError):
    """A slide (or a region of it) cannot be opened or read."""


def plausible_mpp(value) -> Optional[float]:
    """``float(value)`` if it is a pixel size in :data:`MPP_RANGE`."""
    try:
        mpp = float(value)
    except (TypeError, ValueError):
        return None
    if not np.isfinite(mpp) or not MPP_RANGE[0] <= mpp <= MPP_RANGE[1]:
        return None
    return mpp


class ImageSource:
    """A readable image pyramid (base class).

    Attributes:
        path (str): File name (used in every message).
        level_dimensions (list[tuple[int, int]]): ``(width, height)`` per
            level, level 0 first.
        level_downsamples (list[float]): Downsample of each level relative
            to level 0.
        mpp (float | None): Microns per pixel of level 0, if known.
        mpp_source (str): Where ``mpp`` came from (for the log).
        is_slide (bool): A pyramidal / whole-slide file (tissue detection
            and downsampled overlays apply by default).
        notes (list[str]): Messages about the file (alpha composited,
            mpp derived from the objective power ...).
    """

    path: str = '<array>'
    level_dimensions: List[Tuple[int, int]]
    level_downsamples: List[float]
    mpp: Optional[float] = None
    mpp_source: str = 'unknown'
    is_slide: bool = False
    reader: str = ''

    def __init__(self) -> None:
        self.notes: List[str] = []

    @property
    def dimensions(self) -> Tuple[int, int]:
        """``(width, height)`` of level 0."""
        return self.level_dimensions[0]

    def best_level(self, downsample: float) -> int:
        """The coarsest level whose downsample does not exceed
        ``downsample`` (by more than 1 %), i.e. the level nearest the
        target pixel size that still has enough resolution."""
        best = 0
        for i, d in enumerate(self.level_downsamples):
            if d <= downsample * 1.01 and d >= self.level_downsamples[best]:
                best = i
        return best

    def read_region(self, level: int, x: int, y: int, w: int,
                    h: int) -> np.ndarray:
        """``h x w x 3`` uint8 RGB at ``(x, y)`` in *level* coordinates.

        Pixels outside the level are white (background).
        """
        lw, lh = self.level_dimensions[level]
        out = np.full((h, w, 3), 255, np.uint8)
        x0, y0 = max(x, 0), max(y, 0)
        x1, y1 = min(x + w, lw), min(y + h, lh)
        if x1 > x0 and y1 > y0:
            try:
                region = self._read(level, x0, y0, x1 - x0, y1 - y0)
            except SlideReadError:
                raise
            except Exception as err:  # reader-specific errors
                raise SlideReadError(
                    f'{self.path}: cannot read region x={x0} y={y0} '
                    f'{x1 - x0}x{y1 - y0} of level {level}: '
                    f'{type(err).__name__}: {err}') from err
            out[y0 - y:y1 - y, x0 - x:x1 - x] = region
        return out

    def _read(self, level: int, x: int, y: int, w: int,
              h: int) -> np.ndarray:
        raise NotImplementedError

    def thumbnail(self, max_side: int = 1024) -> Tuple[np.ndarray, float]:
        """A downsampled RGB view of the whole image.

        Returns:
            tuple[np.ndarray, float]: The thumbnail and its downsample
            relative to level 0 (level-0 px per thumbnail px).
        """
        w0, h0 = self.dimensions
        target = max(w0, h0) / float(max_side)
        level = self.best_level(max(target, 1.0))
        lw, lh = self.level_dimensions[level]
        img = self.read_region(level, 0, 0, lw, lh)
        scale = min(1.0, max_side / float(max(lw, lh)))
        if scale < 1.0:
            size = (max(1, round(lw * scale)), max(1, round(lh * scale)))
            img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
        return img, w0 / float(img.shape[1])

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _mpp_from_pil(path: str) -> Optional[float]:
    """Pixel size from a file's resolution (TIFF tags or PNG pHYs)."""
    from PIL import Image
    try:
        with Image.open(path) as im:
            # Pillow reports TIFF resolutions (inch or centimetre units)
            # and PNG pHYs (per metre) as dots per inch.
            dpi = im.info.get('dpi')
    except Exception:  # the reader proper reports unreadable files
        return None
    if not dpi or not dpi[0]:
        return None
    return plausible_mpp(25400.0 / float(dpi[0]))


class ArraySource(ImageSource):
    """An image decoded into memory (one level).

    Args:
        image (np.ndarray | str): ``HxWx3`` uint8 RGB array, or a file read
            with :func:`~nucseg.utils.io.read_image` (alpha composited on
            white).
        mpp (float, optional): Microns per pixel.
        name (str, optional): Name for messages (defaults to the path).
    """

    reader = 'in memory'

    def __init__(self, image: Union[np.ndarray, PathLike],
                 mpp: Optional[float] = None,
                 name: Optional[str] = None) -> None:
        super().__init__()
        if isinstance(image, np.ndarray):
            self.path = name or '<array>'
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter('always')
                self.image = to_rgb_uint8(image, self.path, alpha='white')
        else:
            self.path = name or os.fspath(image)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter('always')
                self.image = read_image(image, alpha='white')
            if mpp is None:
                mpp = _mpp_from_pil(self.path)
                if mpp is not None:
                    self.mpp_source = 'file resolution tags'
        self.notes += [str(w.message) for w in caught]
        if mpp is not None and self.mpp_source == 'unknown':
            self.mpp_source = 'given'
        self.mpp = mpp
        h, w = self.image.shape[:2]
        self.level_dimensions = [(w, h)]
        self.level_downsamples = [1.0]

    def _read(self, level, x, y, w, h):
        return self.image[y:y + h, x:x + w]


class OpenSlideSource(ImageSource):
    """A slide read lazily with OpenSlide (``openslide-python``).

    Transparent pixels (outside the scanned area) are composited on white.
    """

    reader = 'openslide'

    def __init__(self, path: PathLike) -> None:
        super().__init__()
        import openslide
        self.path = os.fspath(path)
        try:
            self.slide = openslide.OpenSlide(self.path)
        except Exception as err:
            raise SlideReadError(
                f'cannot open slide {self.path} with OpenSlide: '
                f'{type(err).__name__}: {err}') from err
        props = self.slide.properties
        self.level_dimensions = [tuple(map(int, d))
                                 for d in self.slide.level_dimensions]
        self.level_downsamples = [float(d)
                                  for d in self.slide.level_downsamples]
        vendor = props.get('openslide.vendor', '')
        self.is_slide = vendor != 'generic-tiff' or len(
            self.level_dimensions) > 1
        self.mpp = plausible_mpp(props.get('openslide.mpp-x'))
        if self.mpp is not None:
            self.mpp_source = f'slide metadata ({vendor})'
        else:
            power = plausible_mpp(props.get('openslide.objective-power'))
            if power:
                self.mpp = 10.0 / power
                self.mpp_source = (f'objective power {power:g}x of the '
                                   'slide metadata')
                self.notes.append(
                    f'{self.path}: no pixel size in the metadata; '
                    f'{self.mpp:g} um/px assumed from the {power:g}x '
                    'objective')

    def _read(self, level, x, y, w, h):
        d = self.level_downsamples[level]
        rgba = np.asarray(self.slide.read_region(
            (int(round(x * d)), int(round(y * d))), level, (w, h)))
        return to_rgb_uint8(rgba, self.path, alpha='white') \
            if rgba[..., 3].min() < 255 else rgba[..., :3]

    def close(self) -> None:
        self.slide.close()


class TiffSlideSource(ImageSource):
    """An 8-bit TIFF read lazily with ``tiffslide`` (chunk by chunk)."""

    reader = 'tiffslide'

    def __init__(self, path: PathLike) -> None:
        super().__init__()
        import tiffslide
        self.path = os.fspath(path)
        try:
            self.slide = tiffslide.TiffSlide(self.path)
            self.level_dimensions = [tuple(map(int, d))
                                     for d in self.slide.level_dimensions]
            self.level_downsamples = [
                float(d) for d in self.slide.level_downsamples]
            props = self.slide.properties
        except Exception as err:
            raise SlideReadError(
                f'cannot open {self.path} with tiffslide: '
                f'{type(err).__name__}: {err}') from err
        self.is_slide = len(self.level_dimensions) > 1
        self.mpp = plausible_mpp(props.get('tiffslide.mpp-x'))
        if self.mpp is not None:
            self.mpp_source = 'TIFF metadata'

    def _read(self, level, x, y, w, h):
        d = self.level_downsamples[level]
        arr = self.slide.read_region(
            (int(round(x * d)), int(round(y * d))), level, (w, h),
            as_array=True)
        arr = np.asarray(arr)
        if arr.ndim == 3 and arr.shape[2] == 3 and arr.dtype == np.uint8:
            return arr
        return to_rgb_uint8(arr, self.path, alpha='white')

    def close(self) -> None:
        self.slide.close()


def _tiff_is_8bit(path: str) -> bool:
    import tifffile
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        return page.dtype == np.uint8 and page.samplesperpixel in (
            1, 3, 4)


def open_image_source(path: PathLike,
                      mpp: Optional[float] = None) -> ImageSource:
    """Open an image or slide file with the reader that fits it.

    Args:
        path (str): Image or slide file.
        mpp (float, optional): Microns per pixel of level 0, overriding the
            file's metadata.

    Returns:
        ImageSource: The opened source (close it, or use it in ``with``).

    Raises:
        ImageReadError: The file is missing, empty or unreadable
            (:class:`SlideReadError` for slides); the message names it.
    """
    path = os.fspath(path)
    _check_file(path)
    suffix = osp.splitext(path)[1].lower()
    source: Optional[ImageSource] = None
    if suffix in SLIDE_SUFFIXES:
        import openslide
        try:
            vendor = openslide.OpenSlide.detect_format(path)
        except Exception:
            vendor = None
        if vendor is not None:
            source = OpenSlideSource(path)
        elif suffix in ('.tif', '.tiff', '.svs'):
            try:
                lazy = _tiff_is_8bit(path)
            except Exception as err:
                if suffix == '.svs':
                    raise SlideReadError(
                        f'cannot open slide {path}: {type(err).__name__}: '
                        f'{err}') from err
                lazy = False  # not a TIFF tifffile reads: try Pillow
            if lazy:
                source = TiffSlideSource(path)
        else:
            raise SlideReadError(
                f'cannot open slide {path}: OpenSlide does not recognise it '
                '(unsupported or corrupt file)')
    if source is None:
        source = ArraySource(path)
    if mpp is not None:
        source.mpp, source.mpp_source = float(mpp), 'given (--mpp)'
    return source


def detect_tissue(thumb: np.ndarray, min_saturation: int = 20,
                  min_area_fraction: float = 1e-4,
                  close_radius: int = 2) -> np.ndarray:
    """Tissue mask of an RGB thumbnail (Otsu on the HSV saturation).

    Glass and unscanned background are unsaturated (white or grey); stained
    tissue is not. The threshold is Otsu's, but at least
    ``min_saturation`` (0-255) so that a blank slide gives an empty mask;
    the mask is closed, its holes filled and specks smaller than
    ``min_area_fraction`` of the thumbnail removed.

    Args:
        thumb (np.ndarray): ``h x w x 3`` uint8 RGB thumbnail.

    Returns:
        np.ndarray: ``h x w`` bool tissue mask.
    """
    sat = cv2.cvtColor(thumb, cv2.COLOR_RGB2HSV)[..., 1]
    # Very dark pixels (pen marks aside) have a noisy saturation: ignore
    # pure black as well as pure white.
    valid = thumb.max(axis=2) > 30
    if sat.max() <= min_saturation:
        return np.zeros(sat.shape, bool)
    thr = max(float(threshold_otsu(sat)), float(min_saturation))
    mask = (sat > thr) & valid
    if close_radius > 0:
        k = cv2.getStructuringElement(
            cv2.MORPH_ELLIPSE, (2 * close_radius + 1, ) * 2)
        mask = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_CLOSE,
                                k).astype(bool)
    mask = ndi.binary_fill_holes(mask)
    comps, n = ndi.label(mask)
    if n:
        areas = np.bincount(comps.ravel())
        small = areas < max(1.0, min_area_fraction * mask.size)
        small[0] = True
        mask = ~small[comps]
    return mask
