"""Grey-level morphological reconstruction and h-maxima with OpenCV.

Same results as :func:`skimage.morphology.reconstruction` (dilation, full
3x3 connectivity) and :func:`skimage.morphology.h_maxima` (bit for bit,
tested), but computed by iterated geodesic dilation (``cv2.dilate`` then
a pointwise minimum with the mask) until nothing changes, restricted each
iteration to the bounding box of the pixels the last one changed.
scikit-image's version sorts every pixel of the image first; on the
smoothed distance maps of nuclei (a few dozen iterations) this is ~3-4x
faster for a 1000 x 1000 image.
"""
import cv2
import numpy as np

__all__ = ['reconstruction_by_dilation', 'h_maxima']

_KERNEL = np.ones((3, 3), np.uint8)


def reconstruction_by_dilation(seed: np.ndarray,
                               mask: np.ndarray) -> np.ndarray:
    """Morphological reconstruction by dilation of ``seed`` under ``mask``.

    Args:
        seed (np.ndarray): ``H x W`` marker image (values above ``mask``
            are clipped to it, as scikit-image does).
        mask (np.ndarray): ``H x W`` mask image, same shape.

    Returns:
        np.ndarray: ``H x W`` float64 reconstruction (8-connectivity).
    """
    seed = np.asarray(seed, np.float64)
    mask = np.asarray(mask, np.float64)
    if seed.ndim != 2 or seed.shape != mask.shape:
        raise ValueError(f'seed and mask must be HxW of one shape, got '
                         f'{seed.shape} and {mask.shape}')
    rec = np.minimum(seed, mask)
    h, w = rec.shape
    y0, y1, x0, x1 = 0, h, 0, w  # pixels that may still change
    while True:
        ry0, ry1 = max(y0 - 1, 0), min(y1 + 1, h)  # their neighbourhoods
        rx0, rx1 = max(x0 - 1, 0), min(x1 + 1, w)
        grown = cv2.dilate(rec[ry0:ry1, rx0:rx1], _KERNEL,
                           borderType=cv2.BORDER_REPLICATE)
        new = np.minimum(grown[y0 - ry0:y1 - ry0, x0 - rx0:x1 - rx0],
                         mask[y0:y1, x0:x1])
        changed = new != rec[y0:y1, x0:x1]
        if not changed.any():
            return rec
        rec[y0:y1, x0:x1] = new
        rows = np.flatnonzero(changed.any(1))
        cols = np.flatnonzero(changed.any(0))
        y0, y1 = max(y0 + rows[0] - 1, 0), min(y0 + rows[-1] + 2, h)
        x0, x1 = max(x0 + cols[0] - 1, 0), min(x0 + cols[-1] + 2, w)


def h_maxima(image: np.ndarray, h: float) -> np.ndarray:
    """Regional maxima of height at least ``h`` (scikit-image's
    definition, including its floating-point tolerance).

    Args:
        image (np.ndarray): ``H x W`` image, computed in float64 (for
            integer images scikit-image clips ``image - h`` at the dtype's
            minimum instead; not needed for distance maps).
        h (float): Minimal height, > 0.

    Returns:
        np.ndarray: ``H x W`` uint8 mask of the maxima.
    """
    image = np.asarray(image, np.float64)
    if h <= 0:
        raise ValueError(f'h must be > 0, got {h}')
    if image.size == 0 or h > np.ptp(image):
        return np.zeros(image.shape, np.uint8)
    resolution = 2 * np.finfo(np.float64).resolution * np.abs(image)
    rec = reconstruction_by_dilation(image - h - resolution, image)
    return ((image - rec) >= h).astype(np.uint8)
