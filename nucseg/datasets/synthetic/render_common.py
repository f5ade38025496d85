"""Drawing and acquisition helpers shared by the modality renderers."""
from typing import Tuple

import cv2
import numpy as np

from .instances import COL_ASP, COL_CX, COL_CY, COL_R, COL_U2
from .spec import DomainSpec, Float2

__all__ = [
    'inner_distance', 'radial_distance', 'blur_mask', 'draw_discs',
    'draw_nucleoli', 'acquire'
]


def inner_distance(inst: np.ndarray) -> np.ndarray:
    """Distance (px) to the nearest pixel outside the own instance.

    Boundaries between touching instances count as edges; border pixels
    of an instance get 1, background 0. Returns ``(h, w)`` float32.
    """
    fg = inst > 0
    inner = fg.copy()
    inner[1:, :] &= inst[1:, :] == inst[:-1, :]
    inner[:-1, :] &= inst[:-1, :] == inst[1:, :]
    inner[:, 1:] &= inst[:, 1:] == inst[:, :-1]
    inner[:, :-1] &= inst[:, :-1] == inst[:, 1:]
    dist = cv2.distanceTransform(inner.astype(np.uint8), cv2.DIST_L2, 3)
    return dist + fg.astype(np.float32)


def radial_distance(inst: np.ndarray,
                    table: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Inner distance and its ratio to the semi-minor axis (in [0, 1]).

    Returns:
        tuple: ``dist`` and ``rn``, both ``(h, w)`` float32.
    """
    dist = inner_distance(inst)
    rminor = (table[:, COL_R] / np.sqrt(table[:, COL_ASP])).astype(np.float32)
    rminor[0] = 1.0
    rn = np.clip(dist / rminor[inst], 0, 1)
    return dist, rn


def draw_nucleoli(table: np.ndarray, ids: np.ndarray, h: int,
                  w: int) -> np.ndarray:
    """Small discs near the centres of instances ``ids``.

    Returns ``(h, w)`` float32 in [0, 1] (anti-aliased).
    """
    out = np.zeros((h, w), np.float32)
    for k in ids.tolist():
        cx, cy, r, u2 = table[k, [COL_CX, COL_CY, COL_R, COL_U2]]
        off = 0.6 * r * (u2 - 0.5)  # deterministic offset from the centre
        centre = (int(round((cx + off) * 4)), int(round((cy - off) * 4)))
        radius = int(round(4 * max(1.2, 0.16 * r)))
        cv2.circle(out, centre, radius, 1.0, -1, cv2.LINE_AA, 2)
    return out


def blur_mask(mask: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian-blurred copy of a mask, ``(h, w)`` float32."""
    return cv2.GaussianBlur(mask.astype(np.float32), (0, 0), sigma)


def draw_discs(rng: np.random.Generator,
               h: int,
               w: int,
               n: int,
               r_range: Float2,
               spread: float = 0.0,
               group: Tuple[int, int] = (1, 1),
               aspect: float = 1.3) -> np.ndarray:
    """Filled ellipses (groups of ``group`` around ``n`` centres).

    Returns ``(h, w)`` float32 in {0, 1}.
    """
    out = np.zeros((h, w), np.float32)
    for _ in range(n):
        gx, gy = rng.uniform(0, w), rng.uniform(0, h)
        for _ in range(int(rng.integers(group[0], group[1] + 1))):
            x = gx + rng.normal(0, spread)
            y = gy + rng.normal(0, spread)
            r = rng.uniform(*r_range)
            asp = rng.uniform(1.0, aspect)
            cv2.ellipse(out, (int(round(x * 16)), int(round(y * 16))),
                        (int(round(r * asp * 16)), int(round(r / asp * 16))),
                        rng.uniform(0, 180), 0, 360, 1.0, -1, cv2.LINE_8, 4)
    return out


def acquire(img: np.ndarray, spec: DomainSpec,
            rng: np.random.Generator) -> np.ndarray:
    """Optical blur, shot and read noise, clip -> uint8 (same shape)."""
    if spec.blur > 0:
        img = cv2.GaussianBlur(img, (0, 0), spec.blur)
    if spec.poisson_gain > 0:
        lam = np.clip(img, 0, None) * spec.poisson_gain
        img = rng.poisson(lam).astype(np.float32) / spec.poisson_gain
    if spec.noise > 0:
        img = img + rng.standard_normal(
            img.shape, dtype=np.float32) * spec.noise
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)
