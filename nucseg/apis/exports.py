"""Outputs of tiled inference: label maps, QuPath GeoJSON, CSV, overlays.

Each writer is a *sink* of :class:`~nucseg.apis.tiled_inference.
TiledInferencer`: it receives the final rows of the global instance map
(label maps, overlays) or each nucleus as it is placed (GeoJSON, CSV), so
that nothing of the size of the image is held in memory. Files are written
under temporary names in the output folder and renamed when complete, so
a file with its final name is always whole (``--resume`` relies on it).

Coordinates: level-0 pixels of the input with the top-left *corner* of
the image at ``(0, 0)`` (QuPath's convention: pixel ``(row i, column j)``
covers ``[j, j + 1) x [i, i + 1)``, its centre is ``(j + 0.5, i + 0.5)``);
microns are pixels times the level-0 pixel size.

* :class:`LabelMapWriter`: ``<name>.png`` (uint16) when the image has
  fewer than 65,536 instances, else ``<name>.tif`` (int32, tiled, zlib,
  resolution tags in microns); at the input's full resolution.
* :class:`NucleiExporter`: ``<name>.geojson`` (a FeatureCollection with
  one Polygon Feature per nucleus, ``objectType`` ``detection`` or
  ``annotation``, a ``classification`` and the measurements) and/or
  ``<name>.csv`` (one row per nucleus, :data:`CSV_COLUMNS`, scikit-image
  ``regionprops_table``; ``score`` when the model gives scores).
* :class:`OverlayWriter`: ``<name>_overlay.png``, contours on the image,
  downsampled so that its longer side is at most ``max_side``.
"""
import csv
import json
import math
import os
import struct
import uuid
import zlib
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Optional, Tuple, Union

import cv2
import numpy as np
from scipy import ndimage as ndi

from nucseg.utils.io import MAX_IMAGE_PIXELS, write_image

__all__ = [
    'FORMATS', 'DEFAULT_FORMATS', 'MAX_UINT16_INSTANCES', 'CSV_COLUMNS',
    'LabelMapWriter', 'NucleiExporter', 'OverlayWriter', 'mask_polygon',
    'write_uint16_png', 'rasterize_geojson', 'read_geojson',
    'measure_instances'
]

#: Output formats of ``tools/infer.py --format``.
FORMATS = ('geojson', 'csv', 'labels', 'overlay')
#: Default of ``--format``.
DEFAULT_FORMATS = ('labels', )
#: Label maps with more instances than this are written as 32-bit TIFF.
MAX_UINT16_INSTANCES = 65535
#: Columns of the per-nucleus CSV (``score`` is appended when the model
#: gives scores).
CSV_COLUMNS = ('id', 'centroid_x', 'centroid_y', 'centroid_x_um',
               'centroid_y_um', 'area_px', 'area_um2', 'perimeter_px',
               'perimeter_um', 'eccentricity', 'solidity', 'major_axis_px',
               'minor_axis_px', 'major_axis_um', 'minor_axis_um',
               'mean_haematoxylin')
#: Namespace of the features' deterministic UUIDs.
_UUID_NS = uuid.UUID('6f1c2d5e-3a4b-4c8d-9e0f-1a2b3c4d5e6f')


def _tmp(path: Path) -> Path:
    return path.with_name(f'.{path.name}.tmp')


def _remove(path: Optional[Path]) -> None:
    if path is not None:
        try:
            path.unlink()
        except FileNotFoundError:
            pass


# ---------------------------------------------------------------------------
# Label maps
# ---------------------------------------------------------------------------
def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return (struct.pack('>I', len(data)) + kind + data +
            struct.pack('>I', zlib.crc32(kind + data) & 0xffffffff))


def write_uint16_png(path: Union[str, os.PathLike], height: int, width: int,
                     blocks: Iterable[np.ndarray], level: int = 6) -> None:
    """Write a 16-bit greyscale PNG from blocks of rows, in order.

    Streams: only one block is in memory at a time (Pillow and OpenCV need
    the whole image).

    Args:
        path (str): Output file.
        height, width (int): Image size.
        blocks (Iterable[np.ndarray]): ``rows x width`` arrays with values
            in ``[0, 65535]``, top to bottom, ``height`` rows in total.
        level (int): zlib compression level.
    """
    comp = zlib.compressobj(level)
    rows_done = 0
    with open(path, 'wb') as f:
        f.write(b'\x89PNG\r\n\x1a\n')
        f.write(_png_chunk(b'IHDR', struct.pack('>IIBBBBB', width, height,
                                                16, 0, 0, 0, 0)))
        for block in blocks:
            block = np.asarray(block)
            if block.ndim != 2 or block.shape[1] != width:
                raise ValueError(f'{path}: block of shape {block.shape}, '
                                 f'expected rows x {width}')
            raw = np.zeros((len(block), 1 + 2 * width), np.uint8)
            raw[:, 1:] = block.astype('>u2').view(np.uint8).reshape(
                len(block), 2 * width)
            data = comp.compress(raw.tobytes())
            if data:
                f.write(_png_chunk(b'IDAT', data))
            rows_done += len(block)
        if rows_done != height:
            raise ValueError(f'{path}: got {rows_done} rows, expected '
                             f'{height}')
        f.write(_png_chunk(b'IDAT', comp.flush()))
        f.write(_png_chunk(b'IEND', b''))


class LabelMapWriter:
    """Sink writing the instance label map at the input's full resolution.

    Rows arrive at the processing scale; they are resampled (nearest) to
    the input's level-0 size and appended to a raw int32 file next to the
    output. When the image is done the raw file is converted block by
    block: to a uint16 PNG if there are at most
    :data:`MAX_UINT16_INSTANCES` instances (and the map is within
    :data:`~nucseg.utils.io.MAX_IMAGE_PIXELS`), else to an int32 tiled
    TIFF (zlib) with the pixel size in its resolution tags.

    Args:
        stem (Path): Output path without suffix.
        block_rows (int): Rows per block when converting (and TIFF tile).
    """

    def __init__(self, stem: Union[str, os.PathLike],
                 block_rows: int = 256) -> None:
        self.stem = Path(stem)
        self.block_rows = int(block_rows)
        self.path: Optional[Path] = None
        self.kind = ''
        self._raw: Optional[Path] = None
        self._file = None

    def candidates(self) -> List[Path]:
        """The two possible output files (PNG or TIFF)."""
        return [self.stem.with_suffix('.png'), self.stem.with_suffix('.tif')]

    def begin(self, source, plan, grid) -> None:
        from .tiled_inference import RowResampler
        w0, h0 = source.dimensions
        self.shape = (h0, w0)
        self.mpp = plan.input_mpp if plan.input_mpp is not None else plan.mpp
        self.stem.parent.mkdir(parents=True, exist_ok=True)
        self._raw = self.stem.with_name(f'.{self.stem.name}.labels.raw')
        self._file = open(self._raw, 'wb')
        self._resampler = RowResampler((plan.height, plan.width),
                                       self.shape, self._write)

    def _write(self, y0: int, rows: np.ndarray) -> None:
        self._file.write(np.ascontiguousarray(rows, np.int32).tobytes())

    def add_rows(self, y0: int, rows: np.ndarray) -> None:
        self._resampler(y0, rows)

    def _blocks(self, dtype) -> Iterator[np.ndarray]:
        h, w = self.shape
        with open(self._raw, 'rb') as f:
            for y in range(0, h, self.block_rows):
                n = min(self.block_rows, h - y)
                block = np.fromfile(f, np.int32, n * w).reshape(n, w)
                yield block.astype(dtype, copy=False)

    def _tiles(self) -> Iterator[np.ndarray]:
        t = self.block_rows
        w = self.shape[1]
        for block in self._blocks(np.int32):
            for x in range(0, w, t):
                tile = np.zeros((t, t), np.int32)
                part = block[:, x:x + t]
                tile[:part.shape[0], :part.shape[1]] = part
                yield tile

    def finish(self, result) -> None:
        import tifffile
        self._file.close()
        n = result.num_instances
        h, w = self.shape
        png, tif = self.candidates()
        try:
            if n <= MAX_UINT16_INSTANCES and h * w <= MAX_IMAGE_PIXELS:
                tmp = _tmp(png)
                write_uint16_png(tmp, h, w, self._blocks(np.uint16))
                os.replace(tmp, png)
                self.path, self.kind = png, 'uint16 PNG'
                _remove(tif)
            else:
                tmp = _tmp(tif)
                kw = {}
                if self.mpp:
                    kw = dict(resolution=(1e4 / self.mpp, 1e4 / self.mpp),
                              resolutionunit='CENTIMETER')
                tifffile.imwrite(
                    tmp, self._tiles(), shape=(h, w), dtype='int32',
                    tile=(self.block_rows, self.block_rows),
                    compression='zlib', photometric='minisblack',
                    bigtiff=h * w * 4 > 2**31, **kw)
                os.replace(tmp, tif)
                why = (f'{n} instances exceed the {MAX_UINT16_INSTANCES} of '
                       'a uint16 PNG' if n > MAX_UINT16_INSTANCES else
                       f'{h}x{w} px exceed the PNG limit')
                self.path, self.kind = tif, f'32-bit TIFF ({why})'
                _remove(png)
        finally:
            _remove(self._raw)

    def abort(self) -> None:
        if self._file is not None:
            self._file.close()
        _remove(self._raw)
        for p in self.candidates():
            _remove(_tmp(p))


# ---------------------------------------------------------------------------
# Polygons and measurements
# ---------------------------------------------------------------------------
def _signed_area(ring: np.ndarray) -> float:
    x, y = ring[:, 0], ring[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y))


def mask_polygon(mask: np.ndarray, tolerance: float = 0.0):
    """The outline of a binary mask as a shapely Polygon (holes kept).

    The outline is the 0.5 iso-line of the mask (marching squares,
    :func:`skimage.measure.find_contours`, 8-connected foreground): it
    runs half-way between foreground and background pixel centres, so the
    pixels whose centres it encloses are exactly the mask's. Coordinates
    are in pixels with the mask's top-left corner at ``(0, 0)``. When the
    mask has several parts, the largest (with its holes) is returned.

    Args:
        mask (np.ndarray): ``h x w`` bool.
        tolerance (float): Douglas-Peucker simplification tolerance (px);
            topology preserved; 0 keeps every vertex.

    Returns:
        shapely.Polygon | None: A valid polygon, or None for an empty mask.
    """
    import shapely
    from shapely.geometry import Polygon
    from skimage.measure import find_contours
    if not mask.any():
        return None
    padded = np.pad(mask.astype(np.float32), 1)
    rings = []
    for c in find_contours(padded, 0.5, fully_connected='high'):
        if len(c) < 4:
            continue
        # (row, col) of the padded mask -> (x, y) corner coordinates.
        ring = np.stack([c[:, 1] - 0.5, c[:, 0] - 0.5], axis=1)
        rings.append((ring, _signed_area(ring)))
    if not rings:
        return None
    main_sign = np.sign(max(rings, key=lambda r: abs(r[1]))[1])
    outers = [Polygon(r) for r, a in rings if np.sign(a) == main_sign]
    holes = [Polygon(r) for r, a in rings if np.sign(a) != main_sign]
    outers.sort(key=lambda p: p.area, reverse=True)
    outer = outers[0]
    inner = [h.exterior.coords for h in holes if outer.contains(
        h.representative_point())]
    poly = Polygon(outer.exterior.coords, inner)
    if tolerance > 0:
        poly = poly.simplify(tolerance, preserve_topology=True)
    if not poly.is_valid:
        poly = shapely.make_valid(poly)
        parts = [g for g in getattr(poly, 'geoms', [poly])
                 if g.geom_type == 'Polygon']
        if not parts:
            return None
        poly = max(parts, key=lambda p: p.area)
    return shapely.geometry.polygon.orient(poly, 1.0)


def measure_instances(placed, plan, haematoxylin: bool = True
                      ) -> Dict[str, np.ndarray]:
    """Per-nucleus measurements of the instances one tile placed.

    scikit-image ``regionprops_table`` on the tile's view of the global map
    (the new instances are whole in it), converted to level-0 pixels and
    microns; the mean haematoxylin is the mean of
    :func:`nucseg.utils.stain.stain_concentrations` (Ruifrok H&E, optical
    density) over the nucleus.

    Returns:
        dict[str, np.ndarray]: :data:`CSV_COLUMNS` (plus ``score`` if the
        model gave scores), one value per new instance in id order.
    """
    from skimage.measure import regionprops_table
    rel = placed.relative()
    props = ['label', 'area', 'centroid', 'perimeter', 'eccentricity',
             'solidity', 'axis_major_length', 'axis_minor_length']
    kw = {}
    if haematoxylin:
        from nucseg.utils.stain import stain_concentrations
        kw['intensity_image'] = stain_concentrations(placed.image)[..., 0]
        props.append('intensity_mean')
    t = regionprops_table(rel, properties=props, **kw)
    d = plan.downsample  # level-0 px per processing px
    um = plan.mpp  # microns per processing px
    nan = np.full(len(t['label']), np.nan)
    cx = (t['centroid-1'] + placed.tile.x0 + 0.5) * d
    cy = (t['centroid-0'] + placed.tile.y0 + 0.5) * d
    out = {
        'id': t['label'].astype(np.int64) + placed.first_id - 1,
        'centroid_x': cx,
        'centroid_y': cy,
        'centroid_x_um': cx / d * um if um else nan,
        'centroid_y_um': cy / d * um if um else nan,
        'area_px': t['area'] * d * d,
        'area_um2': t['area'] * um * um if um else nan,
        'perimeter_px': t['perimeter'] * d,
        'perimeter_um': t['perimeter'] * um if um else nan,
        'eccentricity': t['eccentricity'],
        'solidity': t['solidity'],
        'major_axis_px': t['axis_major_length'] * d,
        'minor_axis_px': t['axis_minor_length'] * d,
        'major_axis_um': t['axis_major_length'] * um if um else nan,
        'minor_axis_um': t['axis_minor_length'] * um if um else nan,
        'mean_haematoxylin': t['intensity_mean'] if haematoxylin else nan,
    }
    if placed.scores is not None:
        order = t['label'].astype(np.int64) - 1
        out['score'] = np.asarray(placed.scores)[order]
    return out


def _num(v):
    """JSON/CSV-friendly number (None for NaN)."""
    v = float(v)
    if not math.isfinite(v):
        return None
    return int(v) if v.is_integer() and abs(v) < 2**53 else round(v, 4)


class NucleiExporter:
    """Sink writing one GeoJSON Feature and/or CSV row per nucleus.

    Args:
        geojson (Path, optional): ``.geojson`` output.
        csv_path (Path, optional): ``.csv`` output.
        object_type (str): ``'detection'`` (QuPath detection objects, light
            for hundreds of thousands of nuclei) or ``'annotation'``.
        classification (str): QuPath class name of every nucleus.
        color (tuple): RGB colour of the class.
        simplify (float): Polygon simplification tolerance in level-0 px.
        name (str): Used for the features' deterministic UUIDs.
    """

    def __init__(self, geojson: Optional[Union[str, os.PathLike]] = None,
                 csv_path: Optional[Union[str, os.PathLike]] = None,
                 object_type: str = 'detection',
                 classification: str = 'Nucleus',
                 color: Tuple[int, int, int] = (200, 0, 0),
                 simplify: float = 0.5, name: str = '') -> None:
        if object_type not in ('detection', 'annotation'):
            raise ValueError("object_type must be 'detection' or "
                             f"'annotation', got {object_type!r}")
        self.geojson = Path(geojson) if geojson else None
        self.csv_path = Path(csv_path) if csv_path else None
        self.object_type = object_type
        self.classification = dict(name=classification,
                                   color=[int(c) for c in color])
        self.simplify = float(simplify)
        self.name = name
        self._gj = self._csv = self._writer = None
        self._count = 0
        self.dropped = 0

    def outputs(self) -> List[Path]:
        return [p for p in (self.geojson, self.csv_path) if p is not None]

    def begin(self, source, plan, grid) -> None:
        self.plan = plan
        self.name = self.name or Path(source.path).stem
        if self.geojson is not None:
            self.geojson.parent.mkdir(parents=True, exist_ok=True)
            self._gj = open(_tmp(self.geojson), 'w')
            self._gj.write('{"type": "FeatureCollection", "features": [')
        if self.csv_path is not None:
            self.csv_path.parent.mkdir(parents=True, exist_ok=True)
            self._csv = open(_tmp(self.csv_path), 'w', newline='')

    def add_instances(self, placed) -> None:
        m = measure_instances(placed, self.plan,
                              haematoxylin=True)
        if self._csv is not None:
            if self._writer is None:
                self._writer = csv.writer(self._csv)
                self._writer.writerow(list(m))
            cols = list(m.values())
            for i in range(len(m['id'])):
                self._writer.writerow(
                    ['' if (x := _num(c[i])) is None else x for c in cols])
        if self._gj is not None:
            self._features(placed, m)

    def _features(self, placed, m) -> None:
        import shapely
        rel = placed.relative()
        d = self.plan.downsample
        x0, y0 = placed.tile.x0, placed.tile.y0
        boxes = ndi.find_objects(rel)
        keys = [k for k in m if k != 'id']
        for i, sl in enumerate(boxes):
            if sl is None:
                continue
            poly = mask_polygon(rel[sl] == i + 1, self.simplify / d)
            if poly is None:
                self.dropped += 1
                continue
            ox, oy = x0 + sl[1].start, y0 + sl[0].start
            poly = shapely.transform(poly, lambda c: (c + (ox, oy)) * d)
            gid = int(m['id'][i])
            coords = [[[round(float(x), 2), round(float(y), 2)]
                       for x, y in ring.coords]
                      for ring in [poly.exterior, *poly.interiors]]
            meas = {'id': gid}
            meas.update({k: v for k in keys
                         if (v := _num(m[k][i])) is not None})
            feature = {
                'type': 'Feature',
                'id': str(uuid.uuid5(_UUID_NS, f'{self.name}/{gid}')),
                'geometry': {'type': 'Polygon', 'coordinates': coords},
                'properties': {
                    'objectType': self.object_type,
                    'classification': self.classification,
                    'measurements': meas,
                },
            }
            self._gj.write(('\n' if self._count == 0 else ',\n') +
                           json.dumps(feature, separators=(',', ':')))
            self._count += 1

    def finish(self, result) -> None:
        if self._gj is not None:
            self._gj.write('\n]}\n')
            self._gj.close()
            os.replace(_tmp(self.geojson), self.geojson)
        if self._csv is not None:
            if self._writer is None:  # no nucleus: header only
                csv.writer(self._csv).writerow(CSV_COLUMNS)
            self._csv.close()
            os.replace(_tmp(self.csv_path), self.csv_path)

    def abort(self) -> None:
        for f in (self._gj, self._csv):
            if f is not None:
                f.close()
        for p in self.outputs():
            _remove(_tmp(p))


def read_geojson(path: Union[str, os.PathLike, dict]) -> List[dict]:
    """Features of a GeoJSON FeatureCollection (file or dict)."""
    data = path if isinstance(path, dict) else json.loads(
        Path(path).read_text())
    if data.get('type') == 'FeatureCollection':
        return list(data['features'])
    if data.get('type') == 'Feature':
        return [data]
    raise ValueError(f'{path}: not a GeoJSON FeatureCollection')


def rasterize_geojson(features: Union[str, os.PathLike, dict, List[dict]],
                      shape: Tuple[int, int],
                      downsample: float = 1.0) -> np.ndarray:
    """Paint polygon features into an ``H x W`` int32 label map.

    A pixel belongs to a polygon when its centre lies inside it (holes
    excluded). Ids are ``measurements.id`` when present, else 1, 2, ...
    in feature order; later features win where they overlap.

    Args:
        features: GeoJSON file, FeatureCollection dict or feature list
            (level-0 corner coordinates, as :class:`NucleiExporter` writes).
        shape (tuple[int, int]): ``(H, W)`` of the map.
        downsample (float): Level-0 px per map px.
    """
    from skimage.draw import polygon as draw_polygon
    if not isinstance(features, list):
        features = read_geojson(features)
    out = np.zeros(shape, np.int32)
    for k, feat in enumerate(features, 1):
        geom = feat.get('geometry') or {}
        if geom.get('type') == 'Polygon':
            polys = [geom['coordinates']]
        elif geom.get('type') == 'MultiPolygon':
            polys = geom['coordinates']
        else:
            continue
        meas = (feat.get('properties') or {}).get('measurements') or {}
        gid = int(meas.get('id', k)) if isinstance(meas, dict) else k
        for rings in polys:
            for j, ring in enumerate(rings):
                xy = np.asarray(ring, np.float64) / downsample - 0.5
                rr, cc = draw_polygon(xy[:, 1], xy[:, 0], shape)
                if j == 0:
                    out[rr, cc] = gid
                else:  # a hole: only this polygon's pixels are cleared
                    sel = out[rr, cc] == gid
                    out[rr[sel], cc[sel]] = 0
    return out


# ---------------------------------------------------------------------------
# Overlay
# ---------------------------------------------------------------------------
class OverlayWriter:
    """Sink writing ``<name>_overlay.png``: instance contours on the image.

    The image and the label map are kept at the overlay's size only
    (longer side at most ``max_side``): the thumbnail first, replaced by
    each processed tile, then the instances, whose colours cycle through a
    fixed palette.

    Args:
        path (Path): Output PNG.
        max_side (int): Longer side of the overlay (slides and large images
            are downsampled).
    """

    def __init__(self, path: Union[str, os.PathLike],
                 max_side: int = 2048) -> None:
        self.path = Path(path)
        self.max_side = int(max_side)

    def begin(self, source, plan, grid) -> None:
        from .tiled_inference import RowResampler
        w0, h0 = source.dimensions
        f = max(1.0, max(w0, h0) / float(self.max_side))
        self.size = (max(1, int(round(h0 / f))), max(1, int(round(w0 / f))))
        oh, ow = self.size
        thumb, _ = source.thumbnail(max(oh, ow))
        self.image = cv2.resize(thumb, (ow, oh),
                                interpolation=cv2.INTER_AREA)
        self.labels = np.zeros(self.size, np.int32)
        self.gy = plan.height / float(oh)  # processing px per overlay px
        self.gx = plan.width / float(ow)
        self._resampler = RowResampler((plan.height, plan.width), self.size,
                                       self._emit)

    def _emit(self, y0: int, rows: np.ndarray) -> None:
        self.labels[y0:y0 + len(rows)] = rows

    def add_tile_image(self, tile, rgb: np.ndarray) -> None:
        y_lo, y_hi, x_lo, x_hi = tile.core
        a0, a1 = int(round(y_lo / self.gy)), int(round(y_hi / self.gy))
        b0, b1 = int(round(x_lo / self.gx)), int(round(x_hi / self.gx))
        if a1 <= a0 or b1 <= b0:
            return
        crop = rgb[y_lo - tile.y0:y_hi - tile.y0, x_lo - tile.x0:x_hi -
                   tile.x0]
        self.image[a0:a1, b0:b1] = cv2.resize(
            crop, (b1 - b0, a1 - a0), interpolation=cv2.INTER_AREA)

    def add_rows(self, y0: int, rows: np.ndarray) -> None:
        self._resampler(y0, rows)

    def finish(self, result) -> None:
        from nucseg.visualization.overlay import draw_instances
        tmp = self.path.with_name(f'.{self.path.stem}.tmp.png')
        write_image(tmp, draw_instances(self.image, self.labels,
                                        num_colors=64))
        os.replace(tmp, self.path)

    def abort(self) -> None:
        _remove(self.path.with_name(f'.{self.path.stem}.tmp.png'))
