"""Instance-map overlays for inspection."""
from typing import Optional, Tuple

import cv2
import numpy as np
from skimage.segmentation import find_boundaries

__all__ = ['instance_colors', 'draw_instances', 'make_comparison_panel']


def instance_colors(num: int, seed: int = 0) -> np.ndarray:
    """``(num + 1) x 3`` uint8 colours; row 0 (background) is black."""
    rng = np.random.default_rng(seed)
    hues = rng.permutation(np.linspace(0, 179, max(num, 1), endpoint=False))
    hsv = np.stack([hues, np.full_like(hues, 220),
                    np.full_like(hues, 255)], 1).astype(np.uint8)
    rgb = cv2.cvtColor(hsv[None], cv2.COLOR_HSV2RGB)[0][:num]
    return np.concatenate([np.zeros((1, 3), np.uint8), rgb], 0)


def draw_instances(img: np.ndarray,
                   inst: np.ndarray,
                   alpha: float = 0.35,
                   contour_color: Optional[Tuple[int, int, int]] = None,
                   seed: int = 0,
                   num_colors: Optional[int] = None) -> np.ndarray:
    """Blend instance colours onto an image and draw their contours.

    Args:
        img (np.ndarray): ``HxWx3`` uint8 RGB image.
        inst (np.ndarray): ``HxW`` integer instance map (0 = background).
        alpha (float): Opacity of the instance fill.
        contour_color (tuple, optional): One RGB colour for every contour;
            default uses each instance's own colour.
        seed (int): Colour permutation seed.
        num_colors (int, optional): Cycle through this many colours (id
            ``k`` gets colour ``(k - 1) % num_colors``), so that a colour
            depends on the id only; default: one colour per id up to the
            largest.

    Returns:
        np.ndarray: ``HxWx3`` uint8 RGB overlay.
    """
    if img.shape[:2] != inst.shape:
        raise ValueError(f'image {img.shape[:2]} and instance map '
                         f'{inst.shape} differ in size')
    inst = np.asarray(inst).astype(np.int64)
    if num_colors:
        colors = instance_colors(int(num_colors), seed)
        index = np.where(inst > 0, (inst - 1) % int(num_colors) + 1, 0)
    else:
        colors = instance_colors(int(inst.max()), seed)
        index = inst
    out = img.astype(np.float32)
    fg = inst > 0
    out[fg] = (1 - alpha) * out[fg] + alpha * colors[index[fg]]
    edge = find_boundaries(inst, mode='inner') & fg
    out[edge] = contour_color if contour_color is not None else colors[
        index[edge]]
    return np.clip(out, 0, 255).astype(np.uint8)


def make_comparison_panel(img: np.ndarray,
                          pred: np.ndarray,
                          gt: Optional[np.ndarray] = None,
                          title: Optional[str] = None) -> np.ndarray:
    """Side-by-side ``image | ground truth | prediction`` panel (RGB).

    The ground-truth column is omitted when ``gt`` is None.
    """
    cols = [img]
    labels = ['image']
    if gt is not None:
        cols.append(draw_instances(img, gt, contour_color=(0, 255, 0)))
        labels.append(f'GT ({len(np.unique(gt)) - (gt == 0).any()})')
    cols.append(draw_instances(img, pred, contour_color=(255, 255, 0)))
    labels.append(f'pred ({len(np.unique(pred)) - (pred == 0).any()})')
    sep = np.full((img.shape[0], 4, 3), 255, np.uint8)
    panel = np.concatenate(sum([[c, sep] for c in cols], [])[:-1], 1)
    bar = np.full((22, panel.shape[1], 3), 255, np.uint8)
    x = 4
    for c, text in zip(cols, labels):
        cv2.putText(bar, text if title is None or x > 4 else
                    f'{title}: {text}', (x, 16), cv2.FONT_HERSHEY_SIMPLEX,
                    0.45, (0, 0, 0), 1, cv2.LINE_AA)
        x += c.shape[1] + 4
    return np.concatenate([bar, panel], 0)
