"""Tiled inference with instance stitching, for images and whole slides.

Every nucseg model predicts an instance map for an image of the size its
test pipeline gives it. :class:`TiledInferencer` applies such a model to an
image or slide of any size, at the model's own pixel scale:

1. the input is opened as an :class:`~nucseg.utils.slide.ImageSource`
   (lazy for slides and tiled TIFF) and its pixel size (``--mpp`` or the
   file's metadata) is compared with the config's (``infer_cfg.mpp``); the
   pyramid level nearest that scale is read and rescaled;
2. the image (at the model's scale) is cut into tiles of
   ``infer_cfg.tile_size`` overlapping by ``infer_cfg.overlap`` px
   (:class:`TileGrid`); on slides, tiles without tissue (Otsu on the
   saturation of a thumbnail) are skipped;
3. each tile goes through the config's test-time transforms and the model
   (:class:`TilePredictor`);
4. the tile's instances are stitched into the global map
   (:class:`InstanceStitcher`): an instance is kept only by the tile in
   whose *core* its centroid lies (the cores partition the image along the
   middle of each overlap, so each nucleus has one owner, which sees it
   with at least half an overlap of context on every side), and only if it
   does not overlap instances already placed by more than half of its
   area (otherwise it duplicates one); it is pasted on free pixels only;
5. the global map is kept as a band of one tile's height: rows no later
   tile can touch are handed to the outputs (label map, overlay) and
   forgotten, and each new instance is handed to the per-nucleus outputs
   (GeoJSON, CSV) when it is placed. Memory therefore depends on the
   image width and the tile size, not on the image area.

Configs declare their scale and tiling in ``infer_cfg`` (keys:
:data:`INFER_CFG_KEYS`), e.g. ``infer_cfg = dict(mpp=0.25,
tile_size=1024, overlap=128, nucleus_diameter=24)`` for 40x H&E.
"""
import math
import os.path as osp
import sys
import time
from dataclasses import dataclass, field
from typing import (Callable, Iterator, List, Optional, Sequence, Tuple,
                    Union)

import cv2
import numpy as np
import torch
from mmengine.dataset import Compose, pseudo_collate
from torch import nn

from nucseg.utils.config_check import check_keys
from nucseg.utils.labels import dense_index
from nucseg.utils.slide import ArraySource, ImageSource, detect_tissue

__all__ = [
    'INFER_CFG_KEYS', 'DEFAULT_INFER_CFG', 'infer_settings', 'axis_starts',
    'TileGrid', 'Tile', 'InstanceStitcher', 'TilePredictor',
    'TiledInferencer', 'InferenceResult', 'ScaleError', 'NoTissueError',
    'estimate_nucleus_diameter', 'build_tile_pipeline', 'RowResampler'
]

#: Keys of a config's ``infer_cfg``.
INFER_CFG_KEYS = ('mpp', 'tile_size', 'overlap', 'nucleus_diameter',
                  'max_overlap_fraction', 'tissue_min_saturation',
                  'tissue_thumbnail', 'batch_size')
#: Defaults of ``infer_cfg`` (``mpp`` and ``nucleus_diameter`` unknown).
DEFAULT_INFER_CFG = dict(
    mpp=None,
    tile_size=1024,
    overlap=128,
    nucleus_diameter=None,
    max_overlap_fraction=0.5,
    tissue_min_saturation=20,
    tissue_thumbnail=2048,
    batch_size=1)
#: Inputs of unknown pixel size whose nuclei look more than this many
#: times larger or smaller than the config expects get a warning; more
#: than its square (4x), an error.
SCALE_TOLERANCE = 2.0
#: Transforms of a test pipeline that fix the output *size* (they would
#: make the scale depend on the tile size); replaced by the inferencer's
#: mpp-based rescaling.
SIZE_TRANSFORMS = ('Resize', 'RandomResize', 'RandomChoiceResize')


class ScaleError(ValueError):
    """The input's pixel size is unknown and it looks far from the
    config's."""


class NoTissueError(ValueError):
    """Tissue detection found nothing to segment on a slide."""


def infer_settings(cfg, **overrides) -> dict:
    """``infer_cfg`` of a config with defaults and overrides applied.

    Args:
        cfg (Config | dict | None): Model config (its ``infer_cfg`` is
            read; unknown keys are an error naming them).
        **overrides: Values that replace the config's (``None`` = keep).

    Returns:
        dict: Every key of :data:`INFER_CFG_KEYS`.
    """
    given = dict((cfg or {}).get('infer_cfg', None) or {})
    check_keys(given, INFER_CFG_KEYS, 'infer_cfg')
    check_keys(overrides, INFER_CFG_KEYS, 'infer_cfg overrides')
    out = dict(DEFAULT_INFER_CFG)
    out.update(given)
    out.update({k: v for k, v in overrides.items() if v is not None})
    tile, overlap = int(out['tile_size']), int(out['overlap'])
    if tile < 16:
        raise ValueError(f'infer_cfg.tile_size must be >= 16, got {tile}')
    if not 0 <= overlap < tile // 2 + 1 or 2 * overlap >= tile:
        raise ValueError(
            f'infer_cfg.overlap must lie in [0, tile_size / 2), got '
            f'overlap={overlap} for tile_size={tile}')
    out['tile_size'], out['overlap'] = tile, overlap
    if out['mpp'] is not None and not float(out['mpp']) > 0:
        raise ValueError(f"infer_cfg.mpp must be > 0, got {out['mpp']}")
    return out


# ---------------------------------------------------------------------------
# Tiles
# ---------------------------------------------------------------------------
def axis_size(length: int, tile: int, overlap: int,
              shrink: bool = True) -> int:
    """Tile length along one axis.

    ``tile`` for a fixed input size; with ``shrink``, the smallest length
    that covers the axis with as few tiles as ``tile`` would need (a
    2048 px axis takes three 768 px tiles rather than three 1024 px ones,
    1.1x instead of 1.5x the pixels).
    """
    if length <= tile:
        return length
    if not shrink:
        return tile
    n = int(math.ceil((length - overlap) / float(tile - overlap)))
    return min(tile, int(math.ceil((length + (n - 1) * overlap) / n)))


def axis_starts(length: int, tile: int, overlap: int) -> List[int]:
    """Tile starts along one axis: stride ``tile - overlap``, the last
    tile flush with the end (so it may overlap its neighbour more)."""
    if length <= tile:
        return [0]
    stride = tile - overlap
    n = int(math.ceil((length - tile) / stride)) + 1
    return sorted({min(i * stride, length - tile) for i in range(n)})


def _cores(starts: Sequence[int], tile: int, length: int) -> List[tuple]:
    """Core interval of each tile: split at the middle of each overlap."""
    bounds = [0]
    for a, b in zip(starts[:-1], starts[1:]):
        bounds.append((b + min(a + tile, length)) // 2)
    bounds.append(length)
    return list(zip(bounds[:-1], bounds[1:]))


@dataclass
class Tile:
    """One tile of a :class:`TileGrid` (processing-scale pixels).

    Attributes:
        index (int): Raster index.
        y0, x0, h, w (int): Position and size.
        core (tuple): ``(y_lo, y_hi, x_lo, x_hi)``: centroids owned.
        inner (tuple): ``(top, bottom, left, right)``: whether each edge
            lies inside the image (an instance touching it is cut).
    """
    index: int
    y0: int
    x0: int
    h: int
    w: int
    core: Tuple[int, int, int, int]
    inner: Tuple[bool, bool, bool, bool]


class TileGrid:
    """Overlapping tiles covering an ``height x width`` image.

    Args:
        height, width (int): Image size (processing scale).
        tile (int): Largest tile side (smaller images are one tile of their
            size).
        overlap (int): Overlap of neighbouring tiles (px).
        shrink (bool): Shrink the tiles of each axis to the smallest size
            that needs no more tiles (:func:`axis_size`); False keeps
            ``tile`` (models with a fixed input size).
    """

    def __init__(self, height: int, width: int, tile: int,
                 overlap: int, shrink: bool = False) -> None:
        if height < 1 or width < 1:
            raise ValueError(f'empty image {height}x{width}')
        self.height, self.width = int(height), int(width)
        self.tile, self.overlap = int(tile), int(overlap)
        self.tile_h = axis_size(self.height, self.tile, self.overlap, shrink)
        self.tile_w = axis_size(self.width, self.tile, self.overlap, shrink)
        self.ys = axis_starts(self.height, self.tile_h, self.overlap)
        self.xs = axis_starts(self.width, self.tile_w, self.overlap)
        self.core_y = _cores(self.ys, self.tile_h, self.height)
        self.core_x = _cores(self.xs, self.tile_w, self.width)

    def __len__(self) -> int:
        return len(self.ys) * len(self.xs)

    @property
    def shape(self) -> Tuple[int, int]:
        """``(rows, cols)`` of tiles."""
        return len(self.ys), len(self.xs)

    def seams(self) -> Tuple[List[int], List[int]]:
        """Rows and columns where tiles start or end inside the image."""
        th, tw = self.tile_h, self.tile_w
        ys = sorted({y for y in self.ys if y > 0} | {
            y + th for y in self.ys if y + th < self.height})
        xs = sorted({x for x in self.xs if x > 0} | {
            x + tw for x in self.xs if x + tw < self.width})
        return ys, xs

    def __iter__(self) -> Iterator[Tile]:
        i = 0
        for r, y0 in enumerate(self.ys):
            h = min(self.tile_h, self.height - y0)
            for c, x0 in enumerate(self.xs):
                w = min(self.tile_w, self.width - x0)
                core = self.core_y[r] + self.core_x[c]
                inner = (y0 > 0, y0 + h < self.height, x0 > 0,
                         x0 + w < self.width)
                yield Tile(i, y0, x0, h, w, core, inner)
                i += 1


# ---------------------------------------------------------------------------
# Stitching
# ---------------------------------------------------------------------------
@dataclass
class PlacedInstances:
    """Instances placed by one tile, handed to the per-nucleus outputs.

    Attributes:
        tile (Tile): The tile (processing-scale coordinates).
        labels (np.ndarray): ``h x w`` int32 view of the global map over
            the tile after placing (new ids are ``first_id..last_id``;
            smaller ids belong to earlier tiles).
        first_id, last_id (int): Range of the new global ids.
        image (np.ndarray): ``h x w x 3`` uint8 RGB tile.
        scores (np.ndarray, optional): Score per new id (``last_id -
            first_id + 1`` values) when the model gives scores.
    """
    tile: Tile
    labels: np.ndarray
    first_id: int
    last_id: int
    image: np.ndarray
    scores: Optional[np.ndarray] = None

    @property
    def count(self) -> int:
        return self.last_id - self.first_id + 1

    def relative(self) -> np.ndarray:
        """``labels`` with the new ids renumbered ``1..count`` and every
        other pixel 0."""
        rel = self.labels.astype(np.int64) - (self.first_id - 1)
        rel[(rel < 1) | (rel > self.count)] = 0
        return rel.astype(np.int32)


@dataclass
class StitchStats:
    """Counts of the stitching decisions (for the log and tests)."""
    placed: int = 0
    not_owned: int = 0
    duplicates: int = 0
    trimmed: int = 0
    cut: int = 0


class InstanceStitcher:
    """Stitch per-tile instance maps into one global map, band by band.

    Tiles must arrive in raster order (rows of tiles top to bottom). The
    global map is held only for the rows the current row of tiles covers;
    rows above it are final and passed to ``on_rows(y0, rows)`` (a view,
    copy it to keep it) as soon as no later tile can change them.

    Rule (see the module doc): a tile's instance is kept iff its centroid
    lies in the tile's core and at most ``max_overlap_fraction`` of its
    area is already taken by placed instances; it is pasted on free pixels
    only, with the next global id. An owned instance touching an inner tile
    edge is larger than half the overlap: it is kept but counted as ``cut``
    (raise the overlap).

    Args:
        height, width (int): Image size (processing scale).
        band_height (int): Rows held (at least the tile size).
        on_rows (callable, optional): Receives final rows.
        max_overlap_fraction (float): Duplicate threshold.
        first_id (int): First global id.
    """

    def __init__(self, height: int, width: int, band_height: int,
                 on_rows: Optional[Callable[[int, np.ndarray],
                                            None]] = None,
                 max_overlap_fraction: float = 0.5,
                 first_id: int = 1) -> None:
        self.height, self.width = int(height), int(width)
        self.band_height = min(int(band_height), self.height)
        self.band = np.zeros((self.band_height, self.width), np.int32)
        self.top = 0
        self.on_rows = on_rows
        self.max_overlap_fraction = float(max_overlap_fraction)
        self.next_id = int(first_id)
        self.stats = StitchStats()

    @property
    def num_instances(self) -> int:
        return self.next_id - 1

    def release(self, y: int) -> None:
        """Hand rows ``< y`` to ``on_rows`` and drop them from the band."""
        y = min(int(y), self.height)
        while self.top < y:
            n = min(y - self.top, self.band_height)
            if self.on_rows is not None:
                self.on_rows(self.top, self.band[:n])
            self.band[:self.band_height - n] = self.band[n:].copy()
            self.band[self.band_height - n:] = 0
            self.top += n

    def finish(self) -> None:
        """Hand the remaining rows to ``on_rows``."""
        self.release(self.height)

    def add(self, tile: Tile, labels: np.ndarray,
            scores: Optional[np.ndarray] = None
            ) -> Tuple[np.ndarray, int, int, Optional[np.ndarray]]:
        """Place the instances of one tile.

        Args:
            tile (Tile): Where the tile lies.
            labels (np.ndarray): ``tile.h x tile.w`` integer instance map
                (any ids, 0 = background).
            scores (np.ndarray, optional): Score of each id of ``labels``
                (index ``id - 1``).

        Returns:
            tuple: The band view over the tile, the first and last new
            global id (``last < first`` if none) and the new ids' scores.
        """
        if labels.shape != (tile.h, tile.w):
            raise ValueError(f'tile {tile.index}: instance map of shape '
                             f'{labels.shape}, expected {(tile.h, tile.w)}')
        if tile.y0 < self.top:
            raise ValueError('tiles must arrive in raster order')
        self.release(tile.y0)
        by = tile.y0 - self.top
        if by + tile.h > self.band_height:
            raise ValueError(f'tile {tile.index} exceeds the band of '
                             f'{self.band_height} rows')
        view = self.band[by:by + tile.h, tile.x0:tile.x0 + tile.w]
        first = self.next_id
        index, n = dense_index(labels)
        if n == 0:
            return view, first, first - 1, None
        index = index.reshape(labels.shape)
        area = np.bincount(index.ravel(), minlength=n + 1).astype(np.float64)
        ys, xs = np.indices(labels.shape, dtype=np.float64)
        cy = np.bincount(index.ravel(), ys.ravel(), n + 1) / np.maximum(
            area, 1) + tile.y0
        cx = np.bincount(index.ravel(), xs.ravel(), n + 1) / np.maximum(
            area, 1) + tile.x0
        y_lo, y_hi, x_lo, x_hi = tile.core
        owned = (cy >= y_lo) & (cy < y_hi) & (cx >= x_lo) & (cx < x_hi)
        owned[0] = False
        taken = view > 0
        overlap = np.bincount(index[taken], minlength=n + 1)
        dup = overlap > self.max_overlap_fraction * area
        keep = owned & ~dup
        keep[0] = False
        touching = np.zeros(n + 1, bool)
        for edge, inner in zip(
                (index[0], index[-1], index[:, 0], index[:, -1]),
                tile.inner):
            if inner:
                touching[edge] = True
        self.stats.not_owned += int(np.count_nonzero(~owned[1:]))
        self.stats.duplicates += int(np.count_nonzero(owned & dup))
        self.stats.trimmed += int(np.count_nonzero(keep & (overlap > 0)))
        self.stats.cut += int(np.count_nonzero(keep & touching))
        k = int(np.count_nonzero(keep))
        new_id = np.zeros(n + 1, np.int64)
        new_id[keep] = np.arange(first, first + k)
        paste = keep[index] & ~taken
        view[paste] = new_id[index[paste]]
        self.next_id += k
        self.stats.placed += k
        new_scores = None
        if scores is not None:
            ids = np.unique(labels)
            ids = ids[ids > 0]
            scores = np.asarray(scores, np.float64)
            per_dense = np.full(n + 1, np.nan)
            valid = ids - 1 < len(scores)
            per_dense[1:][valid] = scores[ids[valid] - 1]
            new_scores = per_dense[keep]
        return view, first, first + k - 1, new_scores


class RowResampler:
    """Nearest-neighbour resampling of a row stream to another size.

    Rows of a ``src_h x src_w`` map arrive in order (in chunks); rows of
    the ``dst_h x dst_w`` map are emitted as soon as their source row has
    arrived. Destination row ``j`` takes source row ``floor((j + 0.5) *
    src_h / dst_h)`` (likewise for columns), as ``cv2.INTER_NEAREST``.
    """

    def __init__(self, src_shape: Tuple[int, int],
                 dst_shape: Tuple[int, int],
                 emit: Callable[[int, np.ndarray], None]) -> None:
        (self.sh, self.sw), (self.dh, self.dw) = src_shape, dst_shape
        self.emit = emit
        self.next_row = 0
        j = np.arange(self.dh)
        self.src_rows = np.minimum(((j + 0.5) * self.sh / self.dh).astype(
            np.int64), self.sh - 1)
        i = np.arange(self.dw)
        self.src_cols = np.minimum(((i + 0.5) * self.sw / self.dw).astype(
            np.int64), self.sw - 1)
        self.identity = (self.sh, self.sw) == (self.dh, self.dw)

    def __call__(self, y0: int, rows: np.ndarray) -> None:
        if self.identity:
            self.emit(y0, rows)
            self.next_row = y0 + len(rows)
            return
        y1 = y0 + len(rows)
        j0 = self.next_row
        j1 = int(np.searchsorted(self.src_rows, y1, side='left'))
        if j1 > j0:
            picked = rows[self.src_rows[j0:j1] - y0][:, self.src_cols]
            self.emit(j0, picked)
        self.next_row = j1


# ---------------------------------------------------------------------------
# The model on one tile
# ---------------------------------------------------------------------------
def build_tile_pipeline(cfg) -> Tuple[Compose, List[str], bool]:
    """The config's test-time transforms for in-memory tiles.

    The test pipeline (:func:`nucseg.apis.build_test_pipeline`) without its
    loading transforms (tiles arrive as arrays) and without the
    aspect-keeping resizes to a fixed size (:data:`SIZE_TRANSFORMS` with a
    ``scale`` and ``keep_ratio=True``, e.g. SPROUT's MoNuSeg images to
    1024): those make the scale depend on the image size (a 500 px crop
    would be upsampled 2x); the inferencer brings every tile to the
    config's pixel size (``infer_cfg.mpp``) instead. A resize to a fixed
    size *without* keeping the ratio is the model's input size (SAM's
    1024 x 1024): it is kept, and tiles smaller than the tile size are
    padded so that every tile is resized by the same factor. Scale-factor
    resizes and every other transform are kept.

    Returns:
        tuple[Compose, list[str], bool]: The pipeline, the dropped
        transforms (for the log) and whether tiles must be padded to the
        tile size (a fixed model input size).
    """
    from .inference import build_test_pipeline
    pipeline = build_test_pipeline(cfg)
    kept, dropped, fixed_input = [], [], False
    for t in pipeline.transforms:
        name = type(t).__name__
        if name.startswith('Load'):
            continue
        if name in SIZE_TRANSFORMS and getattr(t, 'scale', None):
            if getattr(t, 'keep_ratio', False):
                dropped.append(f'{name}(scale={t.scale}, keep_ratio=True)')
                continue
            fixed_input = True
        kept.append(t)
    return Compose(kept), dropped, fixed_input


class TilePredictor:
    """Instance maps of in-memory RGB tiles with a model's test transforms.

    Args:
        model (nn.Module): A nucseg model (``model.cfg`` set, as
            :func:`nucseg.apis.init_model` returns).
        tile_size (int): Tiles smaller than this are padded with white to
            it when the model has a fixed input size (see
            :func:`build_tile_pipeline`).
    """

    def __init__(self, model: nn.Module, tile_size: int) -> None:
        self.model = model
        self.tile_size = int(tile_size)
        self.pipeline, self.dropped, self.pad = build_tile_pipeline(
            model.cfg)

    def __call__(self, tiles: Sequence[np.ndarray], name: str = '<tile>'
                 ) -> List[Tuple[np.ndarray, Optional[np.ndarray]]]:
        """``[(labels, scores or None)]`` for ``h x w x 3`` uint8 tiles.

        Labels are ``h x w`` int32 at the tile's size; scores (one per id,
        index ``id - 1``) come from a data sample's
        ``pred_instance_scores`` when the model sets it.
        """
        data, sizes = [], [t.shape[:2] for t in tiles]
        for t in tiles:
            h, w = t.shape[:2]
            if self.pad and (h < self.tile_size or w < self.tile_size):
                t = cv2.copyMakeBorder(
                    t, 0, max(0, self.tile_size - h), 0,
                    max(0, self.tile_size - w), cv2.BORDER_CONSTANT,
                    value=(255, 255, 255))
            shape = t.shape[:2]
            data.append(self.pipeline(dict(
                img=t, img_shape=shape, ori_shape=shape, img_path=name)))
        with torch.no_grad():
            samples = self.model.test_step(pseudo_collate(data))
        out = []
        for (h, w), d, sample in zip(sizes, data, samples):
            if 'pred_instance_map' not in sample:
                raise RuntimeError(
                    f'{type(self.model).__name__} gave no pred_instance_map '
                    f'for {name}; its config needs an instance '
                    'post-processor')
            labels = sample.pred_instance_map.data[0].cpu().numpy()
            ph, pw = d['data_samples'].ori_shape[:2]
            if labels.shape != (ph, pw):
                labels = cv2.resize(
                    labels.astype(np.float32), (pw, ph),
                    interpolation=cv2.INTER_NEAREST)
            labels = labels[:h, :w]
            scores = sample.get('pred_instance_scores', None)
            if scores is not None:
                scores = np.asarray(
                    scores.cpu() if isinstance(scores, torch.Tensor) else
                    scores, np.float64).ravel()
            out.append((np.ascontiguousarray(labels, np.int32), scores))
        return out


# ---------------------------------------------------------------------------
# Scale checks
# ---------------------------------------------------------------------------
def estimate_nucleus_diameter(img: np.ndarray) -> Optional[float]:
    """Typical nucleus diameter (px) of an H&E image, or None.

    Scale-space blob size of the haematoxylin concentration: the
    scale-normalised Laplacian of Gaussian ``-sigma^2 LoG_sigma(H)`` is
    largest at the centre of a disc of diameter ``2 sqrt(2) sigma``; the
    ``sigma`` whose 99th percentile response (over the image) is largest
    gives the diameter. Sigmas from 1.4 to 64 px (diameters 4-180 px), on
    the image halved (and ``sigma`` halved) for speed. A rough estimate
    (within ~25 % on most MoNuSeg and synthetic images, 3x too small on a
    vesicular-nuclei image), used only to flag inputs whose pixel size is
    unknown and grossly different from the config's.

    Returns:
        float | None: The diameter, or None for an image without stain
        contrast.
    """
    from nucseg.utils.stain import stain_concentrations
    h = stain_concentrations(img)[..., 0].astype(np.float32)
    if not np.isfinite(h).all() or h.max() - h.min() < 1e-3:
        return None
    f = 2 if min(h.shape) >= 128 else 1
    if f > 1:
        h = cv2.resize(h, (h.shape[1] // f, h.shape[0] // f),
                       interpolation=cv2.INTER_AREA)
    from scipy import ndimage as ndi
    sigmas = 2.0**np.arange(0.5, 6.01, 0.25)
    best, best_sigma = -np.inf, None
    for sigma in sigmas:
        s = sigma / f
        if 3 * s > min(h.shape):
            break
        resp = float(np.percentile(-s * s * ndi.gaussian_laplace(h, s),
                                   99))
        if resp > best:
            best, best_sigma = resp, sigma
    if best_sigma is None or best <= 0:
        return None
    return float(2.0 * np.sqrt(2.0) * best_sigma)


@dataclass
class ScalePlan:
    """How an input is read: pyramid level, resampling, processing size."""
    level: int
    downsample: float  # level-0 px per processing px
    residual: float  # level px per processing px
    height: int
    width: int
    mpp: Optional[float]  # processing-scale um/px
    input_mpp: Optional[float]
    note: str = ''


# ---------------------------------------------------------------------------
# The inferencer
# ---------------------------------------------------------------------------
@dataclass
class InferenceResult:
    """Outcome of one input.

    Attributes:
        num_instances (int): Instances placed.
        tiles (int): Tiles of the grid; ``tiles_run`` of them had tissue.
        tissue_fraction (float | None): Tissue area fraction (slides).
        plan (ScalePlan): Scale used.
        stats (StitchStats): Stitching counts.
        seconds (float): Wall time.
        notes (list[str]): Messages about the input (the scale assumption
            is ``plan.note``, the same for every input of a run).
    """
    num_instances: int
    tiles: int
    tiles_run: int
    tissue_fraction: Optional[float]
    plan: ScalePlan
    stats: StitchStats
    seconds: float
    notes: List[str] = field(default_factory=list)
    grid: Optional[TileGrid] = None


class TiledInferencer:
    """Predict the instances of images and slides of any size with a model.

    Args:
        model (nn.Module): A nucseg model from
            :func:`nucseg.apis.init_model` (``model.cfg`` set).
        tile_size, overlap, mpp, batch_size (optional): Override the
            config's ``infer_cfg``.
        tissue (str): ``'auto'`` (detect tissue on slides only), ``'on'``
            or ``'off'``.
        progress (bool): Show a progress bar (tiles/s, ETA) on stderr for
            inputs of several tiles.
    """

    def __init__(self, model: nn.Module,
                 tile_size: Optional[int] = None,
                 overlap: Optional[int] = None,
                 mpp: Optional[float] = None,
                 batch_size: Optional[int] = None,
                 tissue: str = 'auto',
                 progress: bool = False) -> None:
        if tissue not in ('auto', 'on', 'off'):
            raise ValueError(
                f"tissue must be 'auto', 'on' or 'off', got {tissue!r}")
        self.model = model
        self.settings = infer_settings(
            getattr(model, 'cfg', None), tile_size=tile_size,
            overlap=overlap, mpp=mpp, batch_size=batch_size)
        self.tissue = tissue
        self.progress = progress
        self.predictor = TilePredictor(model, self.settings['tile_size'])
        self.notes: List[str] = []
        if self.predictor.dropped:
            self.notes.append(
                'tiles are read at the config\'s pixel size instead of '
                'through the test pipeline\'s ' +
                ', '.join(self.predictor.dropped))

    @property
    def model_mpp(self) -> Optional[float]:
        mpp = self.settings['mpp']
        return None if mpp is None else float(mpp)

    # -- scale ------------------------------------------------------------
    def plan_scale(self, source: ImageSource) -> ScalePlan:
        """Pyramid level and resampling that bring ``source`` to the
        config's pixel size.

        Raises:
            ScaleError: The input's pixel size is unknown and its nuclei
                look more than :data:`SCALE_TOLERANCE` times larger or
                smaller than the config expects.
        """
        w0, h0 = source.dimensions
        model_mpp, in_mpp = self.model_mpp, source.mpp
        note = ''
        if model_mpp is not None and in_mpp is not None:
            d = model_mpp / in_mpp
        else:
            d = 1.0
            if model_mpp is None and in_mpp is not None:
                note = (f'the config declares no infer_cfg.mpp: processed '
                        f'at the input\'s {in_mpp:g} um/px')
            elif model_mpp is not None:
                warning = self._check_unknown_scale(source, model_mpp)
                if warning:
                    source.notes.append(warning)
                note = (f'no pixel size given (--mpp) or in the metadata: '
                        f'assumed to be the config\'s {model_mpp:g} um/px')
        level = source.best_level(d)
        residual = d / source.level_downsamples[level]
        if abs(residual - 1.0) < 1e-3:
            residual = 1.0
        height = max(1, int(round(h0 / d)))
        width = max(1, int(round(w0 / d)))
        proc_mpp = model_mpp if model_mpp is not None else in_mpp
        return ScalePlan(level, d, residual, height, width, proc_mpp,
                         in_mpp, note)

    def _check_unknown_scale(self, source: ImageSource,
                             model_mpp: float) -> str:
        """Compare the input's nuclei with the config's (unknown mpp).

        Returns a warning when they look 2-4x larger or smaller than
        expected (empty string otherwise).

        Raises:
            ScaleError: They look more than 4x larger or smaller.
        """
        expected = self.settings['nucleus_diameter']
        if not expected:
            return ''
        w0, h0 = source.dimensions
        if min(w0, h0) < 256:
            return ''  # too small to judge
        side = min(1024, w0, h0)
        x, y = (w0 - side) // 2, (h0 - side) // 2
        est = estimate_nucleus_diameter(source.read_region(0, x, y, side,
                                                           side))
        if est is None:
            return ''
        ratio = est / float(expected)
        if 1.0 / SCALE_TOLERANCE <= ratio <= SCALE_TOLERANCE:
            return ''
        guess = model_mpp / ratio
        what = (f'{source.path}: no pixel size given (--mpp) or found in '
                f'its metadata, and its nuclei look {ratio:.2g}x the size '
                f'the config expects (~{est:.0f} px across vs ~'
                f'{expected:g} px at {model_mpp:g} um/px): it may be at '
                f'~{guess:.2g} um/px.')
        fix = (f' Pass --mpp (e.g. --mpp {guess:.2g}), or --mpp '
               f'{model_mpp:g} to process it as is')
        if ratio > SCALE_TOLERANCE**2 or ratio < SCALE_TOLERANCE**-2:
            raise ScaleError(what + fix)
        return what + ' Processed as ' + f'{model_mpp:g} um/px;' + fix[1:]

    # -- reading ----------------------------------------------------------
    def read_tile(self, source: ImageSource, plan: ScalePlan,
                  tile: Tile) -> np.ndarray:
        """``tile.h x tile.w x 3`` RGB at the processing scale."""
        r = plan.residual
        if r == 1.0:
            return source.read_region(plan.level, tile.x0, tile.y0, tile.w,
                                      tile.h)
        m = 2
        lx0 = int(math.floor(tile.x0 * r)) - m
        ly0 = int(math.floor(tile.y0 * r)) - m
        lx1 = int(math.ceil((tile.x0 + tile.w) * r)) + m
        ly1 = int(math.ceil((tile.y0 + tile.h) * r)) + m
        region = source.read_region(plan.level, lx0, ly0, lx1 - lx0,
                                    ly1 - ly0)
        # Map output pixel centres to level coordinates exactly.
        mat = np.array([[r, 0, (tile.x0 + 0.5) * r - 0.5 - lx0],
                        [0, r, (tile.y0 + 0.5) * r - 0.5 - ly0]],
                       np.float64)
        if r > 1.0:  # shrinking: average first to avoid aliasing
            small = cv2.resize(region, None, fx=1.0 / r, fy=1.0 / r,
                               interpolation=cv2.INTER_AREA)
            sx = region.shape[1] / small.shape[1]
            sy = region.shape[0] / small.shape[0]
            mat = np.array(
                [[r / sx, 0, ((tile.x0 + 0.5) * r - lx0) / sx - 0.5],
                 [0, r / sy, ((tile.y0 + 0.5) * r - ly0) / sy - 0.5]])
            region = small
        # Lanczos when enlarging (as SPROUT's test resize), bilinear on
        # the area-averaged image when shrinking.
        interp = cv2.INTER_LANCZOS4 if r < 1.0 else cv2.INTER_LINEAR
        return cv2.warpAffine(
            region, mat, (tile.w, tile.h),
            flags=interp | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REPLICATE)

    def tissue_mask(self, source: ImageSource, plan: ScalePlan,
                    grid: TileGrid) -> Tuple[Optional[np.ndarray],
                                             Optional[float]]:
        """Per-tile tissue flags (``rows x cols`` bool) and the tissue
        fraction, or ``(None, None)`` when tissue detection is off."""
        use = self.tissue == 'on' or (self.tissue == 'auto'
                                      and source.is_slide)
        if not use:
            return None, None
        thumb, down = source.thumbnail(self.settings['tissue_thumbnail'])
        mask = detect_tissue(thumb, self.settings['tissue_min_saturation'])
        fraction = float(mask.mean())
        if not mask.any():
            return np.zeros(grid.shape, bool), 0.0
        # Processing px per thumbnail px.
        f = down / plan.downsample
        integral = cv2.integral(mask.astype(np.uint8))
        flags = np.zeros(grid.shape, bool)
        th, tw = mask.shape
        for r, y0 in enumerate(grid.ys):
            for c, x0 in enumerate(grid.xs):
                a0 = min(th, int(y0 / f))
                b0 = min(tw, int(x0 / f))
                a1 = min(th, max(a0 + 1, int(math.ceil(
                    (y0 + grid.tile_h) / f))))
                b1 = min(tw, max(b0 + 1, int(math.ceil(
                    (x0 + grid.tile_w) / f))))
                flags[r, c] = (integral[a1, b1] - integral[a0, b1] -
                               integral[a1, b0] + integral[a0, b0]) > 0
        return flags, fraction

    # -- running ------------------------------------------------------------
    def run(self, source: Union[ImageSource, np.ndarray],
            sinks: Sequence[object] = (),
            name: Optional[str] = None) -> InferenceResult:
        """Segment one image or slide, streaming the results to ``sinks``.

        A sink may define ``begin(source, plan, grid)``,
        ``add_tile_image(tile, rgb)``, ``add_instances(placed)``
        (:class:`PlacedInstances`), ``add_rows(y0, rows)`` (final rows of
        the global map, processing scale), ``finish(result)`` and
        ``abort()``; each is called only if present.

        Args:
            source (ImageSource | np.ndarray): The input (an array is
                wrapped in :class:`~nucseg.utils.slide.ArraySource`).
            sinks (Sequence): Output writers.
            name (str, optional): Name for messages.

        Raises:
            ScaleError, NoTissueError, ImageReadError: The input cannot be
                processed (the message names it).
        """
        t_start = time.perf_counter()
        if isinstance(source, np.ndarray):
            source = ArraySource(source, name=name)
        name = name or source.path
        plan = self.plan_scale(source)  # plan.note: see InferenceResult
        notes = list(source.notes)
        tile, overlap = self.settings['tile_size'], self.settings['overlap']
        grid = TileGrid(plan.height, plan.width, tile, overlap,
                        shrink=not self.predictor.pad)
        diameter = self.settings['nucleus_diameter']
        min_side = 2 * diameter if diameter else overlap // 2
        what = 'two nucleus diameters' if diameter else 'half the overlap'
        if min(plan.height, plan.width) < min(min_side, tile):
            notes.append(
                f'{name}: {plan.width}x{plan.height} px (at the model\'s '
                f'scale) is smaller than one tile ({tile} px) and than '
                f'{min_side:g} px ({what}): predicted as a single tile; '
                'nuclei cut by its border may be missed or partial')
        flags, tissue_fraction = self.tissue_mask(source, plan, grid)
        if flags is not None and not flags.any():
            raise NoTissueError(
                f'{name}: no tissue found (saturation of its thumbnail '
                f'never exceeds the threshold of '
                f"{self.settings['tissue_min_saturation']}/255); nothing to "
                'segment. Use --tissue off to process it anyway')
        tiles = [t for t in grid
                 if flags is None or flags.ravel()[t.index]]

        def call(obj, method, *args):
            fn = getattr(obj, method, None)
            if fn is not None:
                return fn(*args)

        def on_rows(y0, rows):
            for s in sinks:
                call(s, 'add_rows', y0, rows)

        stitcher = InstanceStitcher(
            plan.height, plan.width, grid.tile_h, on_rows,
            self.settings['max_overlap_fraction'])
        for s in sinks:
            call(s, 'begin', source, plan, grid)
        bar = self._progress_bar(len(tiles), name)
        batch = max(1, int(self.settings['batch_size']))
        try:
            for i in range(0, len(tiles), batch):
                chunk = tiles[i:i + batch]
                images = [self.read_tile(source, plan, t) for t in chunk]
                for t, img in zip(chunk, images):
                    for s in sinks:
                        call(s, 'add_tile_image', t, img)
                preds = self.predictor(images, name)
                for t, img, (labels, scores) in zip(chunk, images, preds):
                    view, first, last, new_scores = stitcher.add(
                        t, labels, scores)
                    if last >= first:
                        placed = PlacedInstances(t, view, first, last, img,
                                                 new_scores)
                        for s in sinks:
                            call(s, 'add_instances', placed)
                if bar is not None:
                    bar.update(len(chunk))
            stitcher.finish()
        except BaseException:
            for s in sinks:
                call(s, 'abort')
            raise
        finally:
            if bar is not None:
                bar.close()
        if stitcher.stats.cut:
            notes.append(
                f'{name}: {stitcher.stats.cut} instance(s) larger than half '
                f'the tile overlap ({overlap} px) touch a tile edge and may '
                'be cut: raise --overlap')
        result = InferenceResult(
            stitcher.num_instances, len(grid), len(tiles), tissue_fraction,
            plan, stitcher.stats, time.perf_counter() - t_start, notes, grid)
        for s in sinks:
            call(s, 'finish', result)
        return result

    def _progress_bar(self, total: int, name: str):
        if not self.progress or total < 2:
            return None
        from tqdm import tqdm
        desc = (osp.basename(str(name)) or str(name))[-40:]
        return tqdm(total=total, unit='tile', desc=desc,
                    file=sys.stderr, leave=False, dynamic_ncols=True,
                    mininterval=1.0 if sys.stderr.isatty() else 10.0)


class LabelCollector:
    """A sink keeping the whole label map in memory (small images)."""

    def __init__(self, shape: Optional[Tuple[int, int]] = None) -> None:
        self.shape = shape
        self.labels: Optional[np.ndarray] = None
        self._resampler: Optional[RowResampler] = None

    def begin(self, source: ImageSource, plan: ScalePlan, grid) -> None:
        w0, h0 = source.dimensions
        shape = self.shape or (h0, w0)
        self.labels = np.zeros(shape, np.int32)
        self._resampler = RowResampler((plan.height, plan.width), shape,
                                       self._emit)

    def _emit(self, y0: int, rows: np.ndarray) -> None:
        self.labels[y0:y0 + len(rows)] = rows

    def add_rows(self, y0: int, rows: np.ndarray) -> None:
        self._resampler(y0, rows)


def predict_image(inferencer: TiledInferencer,
                  image: Union[str, np.ndarray, ImageSource],
                  mpp: Optional[float] = None,
                  return_notes: bool = False):
    """``H x W`` int32 instance map of one image at its full resolution.

    Args:
        inferencer (TiledInferencer): Model and tiling.
        image (str | np.ndarray | ImageSource): Image file, RGB array or an
            open source.
        mpp (float, optional): Microns per pixel of the input (overrides
            the file's metadata).
        return_notes (bool): Also return the notes about the input.

    Returns:
        np.ndarray | tuple[np.ndarray, list[str]]: The map (and notes).
    """
    from nucseg.utils.slide import open_image_source
    own = not isinstance(image, (ImageSource, np.ndarray))
    if isinstance(image, np.ndarray):
        source = ArraySource(image, mpp=mpp)
    elif own:
        source = open_image_source(image, mpp=mpp)
    else:
        source = image
    try:
        collector = LabelCollector()
        result = inferencer.run(source, [collector])
    finally:
        if own:
            source.close()
    if return_notes:
        plan_note = [f'{source.path}: {result.plan.note}'
                     ] if result.plan.note else []
        return collector.labels, inferencer.notes + plan_note + result.notes
    return collector.labels
