"""Building instance label maps from masks, regions or colour codes.

Painting of (possibly overlapping) instance regions into one label map
with a deterministic "smaller wins" rule and a report of what happened to
every region, connected-component labelling of binary or colour-coded
masks, and the uint16 id-count check of the nucseg label PNGs.
"""
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from scipy import ndimage

from nucseg.utils.io import LabelError
from nucseg.utils.labels import relabel_sequential

PathLike = Union[str, os.PathLike]

#: Largest instance id a uint16 label PNG can hold.
MAX_INSTANCES = 65535

__all__ = [
    'MAX_INSTANCES', 'PaintReport', 'check_instance_count',
    'paint_instances', 'label_components', 'label_by_value'
]


@dataclass
class PaintReport:
    """What :func:`paint_instances` did with its input regions.

    Attributes:
        names (list[str]): Name of each input region (for messages).
        ids (np.ndarray): ``(R,)`` int32 output id of each input region,
            0 if the region could not be kept.
        num_overlapping (int): Regions sharing >= 1 pixel with another.
        num_overlap_pairs (int): Pairs of regions sharing >= 1 pixel.
        contested_pixels (int): Pixels covered by two or more regions.
        restored (list[int]): Regions hidden completely by smaller ones
            that got pixels given back (see :func:`paint_instances`).
        dropped (list[tuple[int, str]]): ``(region index, reason)`` of the
            regions that could not be kept.
        degenerate (list[int]): Regions rasterised from their vertices
            because their polygon has no area (set by polygon converters).
    """
    names: List[str]
    ids: np.ndarray
    num_overlapping: int = 0
    num_overlap_pairs: int = 0
    contested_pixels: int = 0
    restored: List[int] = field(default_factory=list)
    dropped: List[Tuple[int, str]] = field(default_factory=list)
    degenerate: List[int] = field(default_factory=list)

    @property
    def num_regions(self) -> int:
        """Number of input regions."""
        return len(self.names)

    @property
    def num_kept(self) -> int:
        """Number of regions present in the label map."""
        return int(np.count_nonzero(self.ids))

    def as_dict(self) -> Dict[str, Any]:
        """Summary counts and the names of restored/dropped regions."""
        return dict(
            regions=self.num_regions,
            kept=self.num_kept,
            overlapping=self.num_overlapping,
            overlap_pairs=self.num_overlap_pairs,
            contested_pixels=self.contested_pixels,
            restored=[self.names[i] for i in self.restored],
            degenerate=[self.names[i] for i in self.degenerate],
            dropped=[(self.names[i], why) for i, why in self.dropped])


def check_instance_count(num: int, source: PathLike) -> None:
    """Raise :class:`LabelError` if ``num`` ids do not fit a uint16 PNG.

    Args:
        num (int): Number of instances (largest id after renumbering).
        source: Source annotation named in the message.
    """
    if num > MAX_INSTANCES:
        raise LabelError(
            f'{os.fspath(source)}: {num} instances do not fit the uint16 '
            f'label PNG of the nucseg convention (max {MAX_INSTANCES} ids)')


def _split_pixels(pixels: np.ndarray, width: int) -> Tuple[np.ndarray,
                                                           np.ndarray]:
    """Split flat pixel indices in two halves along their longer axis.

    Returns ``(first, second)``; ``first`` holds ``ceil(n / 2)`` pixels.
    """
    rows, cols = np.divmod(pixels, width)
    if np.ptp(cols) >= np.ptp(rows):
        order = np.lexsort((rows, cols))
    else:
        order = np.lexsort((cols, rows))
    half = (pixels.size + 1) // 2
    return pixels[order[:half]], pixels[order[half:]]


def paint_instances(
        pixel_sets: Sequence[np.ndarray],
        shape: Tuple[int, int],
        names: Optional[Sequence[str]] = None
) -> Tuple[np.ndarray, PaintReport]:
    """Paint possibly overlapping instance regions into one label map.

    Rule (deterministic):

    1. Regions are painted from the largest to the smallest (ties in input
       order), so where regions overlap the smaller one wins: a small
       nucleus drawn over a large one stays visible.
    2. A region left with no visible pixel (every pixel it covers is
       owned by smaller regions, e.g. an exact duplicate or a region tiled
       by its neighbours) gets pixels given back, smallest such region
       first: from every region that owns some of its pixels it takes
       those pixels if that region keeps at least one pixel elsewhere;
       otherwise (the owner lies entirely inside it, e.g. a duplicate)
       the shared pixels are split in two halves along their longer axis
       and it takes the second half. Only an owner with a single pixel
       cannot give anything.
    3. A region that still has no pixel (it lies entirely outside the
       image, is empty, or is a one-pixel duplicate) is dropped and
       listed in :attr:`PaintReport.dropped`; nothing is dropped silently.

    Output ids follow input order: the k-th kept region gets id k.

    Args:
        pixel_sets (Sequence[np.ndarray]): One 1-D array of flat (row-major)
            pixel indices ``row * W + col`` per region; duplicates inside
            one array are allowed.
        shape (tuple[int, int]): ``(H, W)`` of the label map.
        names (Sequence[str], optional): Region names for the report.
            Defaults to the input positions.

    Returns:
        tuple[np.ndarray, PaintReport]: ``HxW`` int32 label map with ids
        ``1..N`` and the report.
    """
    h, w = int(shape[0]), int(shape[1])
    n = len(pixel_sets)
    names = [str(i) for i in range(n)] if names is None else list(names)
    if len(names) != n:
        raise ValueError(f'{len(names)} names for {n} regions')
    sets = []
    for i, pix in enumerate(pixel_sets):
        pix = np.unique(np.asarray(pix, dtype=np.int64).ravel())
        if pix.size and (pix[0] < 0 or pix[-1] >= h * w):
            raise ValueError(f'region {names[i]}: pixel index out of range')
        sets.append(pix)
    areas = np.array([s.size for s in sets], dtype=np.int64)
    report = PaintReport(names=names, ids=np.zeros(n, dtype=np.int32))

    # Overlap statistics from the coverage of every pixel.
    if n:
        all_pix = np.concatenate(sets)
        owner_of = np.repeat(np.arange(n), areas)
        order = np.argsort(all_pix, kind='stable')
        all_pix, owner_of = all_pix[order], owner_of[order]
        dup = np.zeros(all_pix.size, dtype=bool)
        if all_pix.size > 1:
            same = all_pix[1:] == all_pix[:-1]
            dup[1:] |= same
            dup[:-1] |= same
        report.contested_pixels = int(np.unique(all_pix[dup]).size)
        report.num_overlapping = int(np.unique(owner_of[dup]).size)
        pairs = set()
        if dup.any():
            pix_c, own_c = all_pix[dup], owner_of[dup]
            starts = np.flatnonzero(np.r_[True, pix_c[1:] != pix_c[:-1]])
            ends = np.r_[starts[1:], pix_c.size]
            groups = {tuple(own_c[s:e]) for s, e in zip(starts, ends)}
            for group in groups:
                for a in range(len(group)):
                    for b in range(a + 1, len(group)):
                        pairs.add((group[a], group[b]))
        report.num_overlap_pairs = len(pairs)

    # 1. Larger regions first so that smaller ones win.
    canvas = np.zeros(h * w, dtype=np.int64)  # region index + 1
    for i in sorted(range(n), key=lambda k: (-areas[k], k)):
        canvas[sets[i]] = i + 1
    counts = np.bincount(canvas, minlength=n + 1)

    # 2. Give pixels back to fully hidden regions, smallest first.
    hidden = [i for i in range(n) if areas[i] > 0 and counts[i + 1] == 0]
    for i in sorted(hidden, key=lambda k: (areas[k], k)):
        pix = sets[i]
        owners = canvas[pix]
        for o in np.unique(owners):
            shared = pix[owners == o]
            if counts[o] - shared.size >= 1:
                take = shared
            elif shared.size >= 2:
                take = _split_pixels(shared, w)[1]
            else:
                continue
            canvas[take] = i + 1
            counts[o] -= take.size
            counts[i + 1] += take.size
        if counts[i + 1] > 0:
            report.restored.append(i)

    # 3. Number the kept regions in input order; report the others.
    lut = np.zeros(n + 1, dtype=np.int64)
    next_id = 1
    for i in range(n):
        if counts[i + 1] > 0:
            lut[i + 1] = next_id
            report.ids[i] = next_id
            next_id += 1
        elif areas[i] == 0:
            report.dropped.append((i, 'no pixel inside the image'))
        else:
            report.dropped.append(
                (i, 'hidden by other regions; no pixel could be given back'))
    label = lut[canvas].reshape(h, w).astype(np.int32)
    return label, report


def _structure(connectivity: int) -> np.ndarray:
    if connectivity == 4:
        return ndimage.generate_binary_structure(2, 1)
    if connectivity == 8:
        return ndimage.generate_binary_structure(2, 2)
    raise ValueError(f'connectivity must be 4 or 8, got {connectivity}')


def label_components(mask: np.ndarray, connectivity: int = 4) -> np.ndarray:
    """Label the connected components of a binary mask.

    Args:
        mask (np.ndarray): ``HxW`` mask; non-zero = foreground.
        connectivity (int): 4 (edge neighbours) or 8 (edges and corners).

    Returns:
        np.ndarray: ``HxW`` int32 instance map, ids ``1..N`` in raster
        order of each component's first pixel.
    """
    label, _ = ndimage.label(
        np.asarray(mask) != 0, structure=_structure(connectivity))
    return label.astype(np.int32)


def label_by_value(code: np.ndarray, connectivity: int = 8) -> np.ndarray:
    """Instances of a colour-coded mask: components of equal value.

    Some data sets (e.g. BBBC039) reuse a few values for all objects and
    only give touching objects different values; every connected region of
    one non-zero value is one instance.

    Args:
        code (np.ndarray): ``HxW`` integer map, 0 = background.
        connectivity (int): 4 or 8.

    Returns:
        np.ndarray: ``HxW`` int32 instance map with ids ``1..N``.
    """
    code = np.asarray(code)
    out = np.zeros(code.shape, dtype=np.int32)
    structure = _structure(connectivity)
    offset = 0
    for value in np.unique(code):
        if value == 0:
            continue
        comp, num = ndimage.label(code == value, structure=structure)
        out[comp > 0] = comp[comp > 0] + offset
        offset += num
    return relabel_sequential(out)
