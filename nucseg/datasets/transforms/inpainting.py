"""Nuclei inpainting of CyC-PDAM (Liu et al., CVPR 2020, Sec. 3.2).

A CycleGAN-synthesised H&E image may show nuclei that the source label
map does not have. Eq. 1-2 remove them::

    M_aux = (otsu(S_raw) OR M) - M            # auxiliary nuclei only
    S_inp = inpaint(S_raw, M_aux)             # fast marching (Telea 2004)

``otsu`` thresholds the haematoxylin channel of colour deconvolution
(nucseg's :func:`~nucseg.utils.stain.rgb_to_hed`). As in the authors' code
(``auxiliary_nuclei_inpaint.py``) the Otsu threshold is found on the H
channel rescaled to 8 bits, turned into a percentile of that 8-bit image,
and the float H channel is cut at the same percentile. ``M`` is dilated a
little (``label_dilation``) so that the rim of an annotated nucleus is not
taken for an extra one; every pixel outside ``M_aux`` -- in particular
every annotated nucleus -- keeps its value exactly.
"""
from typing import Tuple

import cv2
import numpy as np
from mmcv.transforms import BaseTransform
from scipy import ndimage as ndi
from scipy.stats import percentileofscore

from nucseg.registry import TRANSFORMS
from nucseg.utils.io import check_pair
from nucseg.utils.stain import rgb_to_hed

__all__ = [
    'hematoxylin_otsu_mask', 'unannotated_nuclei_mask',
    'inpaint_unannotated_nuclei', 'NucleiInpainting'
]


def hematoxylin_otsu_mask(img: np.ndarray) -> np.ndarray:
    """Pixels whose haematoxylin concentration is above Otsu's threshold.

    Args:
        img (np.ndarray): ``H x W x 3`` uint8 RGB image.

    Returns:
        np.ndarray: ``H x W`` bool mask (all False for a flat H channel).
    """
    h = rgb_to_hed(img)[..., 0]
    lo, hi = float(h.min()), float(h.max())
    if hi <= lo:
        return np.zeros(h.shape, dtype=bool)
    grey = (255.0 * (h - lo) / (hi - lo)).astype(np.uint8)
    thr, _ = cv2.threshold(grey, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    # The authors' percentile round trip: cut H where the 8-bit image is
    # cut, without the 8-bit quantisation.
    pct = percentileofscore(grey.ravel(), thr)
    return h > np.percentile(h, pct)


def unannotated_nuclei_mask(img: np.ndarray,
                            label: np.ndarray,
                            label_dilation: int = 2,
                            min_size: int = 0) -> np.ndarray:
    """``M_aux`` of Eq. 1: Otsu nuclei that the label map does not have.

    Args:
        img (np.ndarray): ``H x W x 3`` uint8 RGB synthesised image.
        label (np.ndarray): ``H x W`` instance map (0 = background).
        label_dilation (int): Pixels by which the annotated nuclei are
            grown before being subtracted (0 = the paper's plain ``- M``).
        min_size (int): Drop auxiliary components smaller than this
            (0 keeps all, as the authors).

    Returns:
        np.ndarray: ``H x W`` bool mask of pixels to inpaint.
    """
    annotated = np.asarray(label) > 0
    if label_dilation > 0:
        annotated = ndi.binary_dilation(
            annotated, ndi.generate_binary_structure(2, 1),
            iterations=int(label_dilation))
    aux = hematoxylin_otsu_mask(img) & ~annotated
    if min_size > 0 and aux.any():
        comps, n = ndi.label(aux)
        sizes = np.bincount(comps.ravel(), minlength=n + 1)
        aux &= (sizes >= min_size)[comps]
    return aux


def inpaint_unannotated_nuclei(img: np.ndarray,
                               label: np.ndarray,
                               radius: float = 3.0,
                               label_dilation: int = 2,
                               min_size: int = 0,
                               name: str = '<image>'
                               ) -> Tuple[np.ndarray, np.ndarray]:
    """Eq. 1-2: remove nuclei without annotation by fast-marching
    inpainting (``cv2.inpaint``, Telea, radius 3).

    Args:
        img (np.ndarray): ``H x W x 3`` uint8 RGB image.
        label (np.ndarray): ``H x W`` instance map of the same size.
        radius (float): Inpainting neighbourhood radius.
        label_dilation (int): See :func:`unannotated_nuclei_mask`.
        min_size (int): See :func:`unannotated_nuclei_mask`.
        name (str): Image name used in errors.

    Returns:
        tuple[np.ndarray, np.ndarray]: Inpainted ``H x W x 3`` uint8 image
        (equal to ``img`` outside the mask) and the ``H x W`` bool mask.

    Raises:
        LabelError: The label map does not match the image size.
        ValueError: The image is not ``H x W x 3`` uint8.
    """
    img = np.asarray(img)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ValueError(f'{name}: expected an H x W x 3 uint8 RGB image, '
                         f'got {img.dtype} {img.shape}')
    check_pair(img, label, name, f'{name} (label)')
    aux = unannotated_nuclei_mask(img, label, label_dilation, min_size)
    if not aux.any():
        return img.copy(), aux
    out = cv2.inpaint(
        np.ascontiguousarray(img), aux.astype(np.uint8), float(radius),
        cv2.INPAINT_TELEA)
    return out, aux


@TRANSFORMS.register_module()
class NucleiInpainting(BaseTransform):
    """On-the-fly nuclei inpainting of a synthesised image (Eq. 1-2).

    Required keys: ``img`` (uint8 RGB), ``gt_instance_map``.
    Modified keys: ``img``. Added keys: ``inpaint_fraction`` (share of
    pixels inpainted).

    Args:
        radius (float): ``cv2.inpaint`` radius (3).
        label_dilation (int): Growth of the annotated nuclei before the
            subtraction (2 px).
        min_size (int): Minimum auxiliary component size (0).
    """

    def __init__(self,
                 radius: float = 3.0,
                 label_dilation: int = 2,
                 min_size: int = 0) -> None:
        if radius <= 0 or label_dilation < 0 or min_size < 0:
            raise ValueError('radius must be > 0, label_dilation and '
                             'min_size >= 0')
        self.radius = radius
        self.label_dilation = label_dilation
        self.min_size = min_size

    def transform(self, results: dict) -> dict:
        if 'gt_instance_map' not in results:
            raise KeyError(
                'NucleiInpainting needs gt_instance_map: put '
                'LoadInstanceAnnotations before it '
                f"({results.get('img_path', '?')})")
        img, aux = inpaint_unannotated_nuclei(
            results['img'], results['gt_instance_map'], self.radius,
            self.label_dilation, self.min_size,
            name=str(results.get('img_path', '<image>')))
        results['img'] = img
        results['inpaint_fraction'] = float(aux.mean())
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(radius={self.radius}, '
                f'label_dilation={self.label_dilation}, '
                f'min_size={self.min_size})')
