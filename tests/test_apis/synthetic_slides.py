"""Synthetic inputs of the tiled-inference tests (images, slides)."""
from typing import Iterable, Tuple

import cv2
import numpy as np

from nucseg.utils.stain import rgb_to_hed

CLASSICAL = 'configs/classical/h-otsu-watershed_monuseg.py'
#: Eosin-pink tissue and haematoxylin-blue nuclei.
TISSUE = (235, 170, 200)
NUCLEUS = (70, 50, 140)


def h_threshold() -> float:
    """A fixed haematoxylin threshold half-way between the two colours."""
    px = np.array([[TISSUE, NUCLEUS]], np.uint8)
    h = rgb_to_hed(px)[0, :, 0]
    return float(h.mean())


def disc_image(shape: Tuple[int, int],
               discs: Iterable[Tuple[float, float, float]]
               ) -> Tuple[np.ndarray, np.ndarray]:
    """RGB image and int32 labels of dark discs ``(x, y, r)`` on tissue."""
    img = np.empty(shape + (3, ), np.uint8)
    img[:] = TISSUE
    lab = np.zeros(shape, np.int32)
    for k, (x, y, r) in enumerate(discs, 1):
        cv2.circle(lab, (int(round(x)), int(round(y))), int(round(r)), k,
                   -1)
    img[lab > 0] = NUCLEUS
    return img, lab


def place_discs(shape, seams_y, seams_x, rng, r_range=(9, 13),
                spacing=70, random_count=400, gap=4):
    """Discs centred on every seam line (and their crossings) every
    ``spacing`` px, plus random ones; no two discs closer than ``gap``."""
    h, w = shape
    wanted = []
    for y in seams_y:
        wanted += [(x, y) for x in range(20, w - 20, spacing)]
    for x in seams_x:
        wanted += [(x, y) for y in range(55, h - 20, spacing)]
    wanted += [(x, y) for y in seams_y for x in seams_x]
    wanted += [tuple(rng.uniform(20, s - 20) for s in (w, h))
               for _ in range(random_count)]
    discs = []
    for x, y in wanted:
        r = float(rng.uniform(*r_range))
        if all((x - a)**2 + (y - b)**2 > (r + c + gap)**2
               for a, b, c in discs):
            discs.append((float(x), float(y), r))
    return discs


def write_pyramid(path, img: np.ndarray, mpp: float, levels: int = 3,
                  tile: int = 128) -> None:
    """A tiled pyramidal TIFF (2x per level, zlib, resolution in um)."""
    import tifffile
    with tifffile.TiffWriter(path) as tw:
        level = img
        for i in range(levels):
            res = 1e4 / (mpp * 2**i)
            tw.write(level, tile=(tile, tile), photometric='rgb',
                     compression='zlib', resolution=(res, res),
                     resolutionunit='CENTIMETER', subfiletype=1 if i else 0,
                     metadata=None)
            level = cv2.resize(level, (level.shape[1] // 2,
                                       level.shape[0] // 2),
                               interpolation=cv2.INTER_AREA)


def synthetic_slide(seed: int = 0, tissue: int = 512,
                    margin: Tuple[int, int] = (128, 320)
                    ) -> Tuple[np.ndarray, np.ndarray]:
    """Synthetic H&E tissue (``he_kumar``) inside a white glass margin."""
    from nucseg.datasets.synthetic import generate_sample
    part, lab = generate_sample('he_kumar', tissue, seed)
    my, mx = margin
    img = np.full((tissue + 2 * my, tissue + 2 * mx, 3), 246, np.uint8)
    img[my:my + tissue, mx:mx + tissue] = part
    full = np.zeros(img.shape[:2], np.int32)
    full[my:my + tissue, mx:mx + tissue] = lab
    return img, full
