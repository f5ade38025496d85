"""GeoJSON / CSV / label / overlay outputs of tiled inference (issue 13)."""
import csv
import json

import cv2
import numpy as np
import pytest

from nucseg.apis.exports import (CSV_COLUMNS, LabelMapWriter,
                                 NucleiExporter, OverlayWriter, mask_polygon,
                                 rasterize_geojson, write_uint16_png)
from nucseg.apis.tiled_inference import TiledInferencer, TileGrid
from nucseg.evaluation.functional import instance_metrics
from nucseg.utils.io import read_label
from nucseg.utils.slide import ArraySource
from nucseg.utils.stain import stain_concentrations


class _Oracle:
    """Stands in for a model: answers each tile (raster order) with the
    crop of a known label map, optionally with scores."""

    pad = False  # the tiles are shrunk as for any model without a fixed size

    def __init__(self, labels, tile, overlap, scores=None):
        grid = TileGrid(*labels.shape, tile, overlap, shrink=True)
        self.crops = [labels[t.y0:t.y0 + t.h, t.x0:t.x0 + t.w]
                      for t in grid]
        self.scores = scores

    def __call__(self, images, name):
        return [(self.crops.pop(0), self.scores) for _ in images]


def _run(labels, img, sinks, tile=96, overlap=32, mpp=None, scores=None):
    import torch
    model = torch.nn.Linear(1, 1)
    model.cfg = dict(infer_cfg=dict(mpp=0.25, tile_size=tile,
                                    overlap=overlap))
    model.test_step = None
    inf = TiledInferencer.__new__(TiledInferencer)
    inf.model, inf.tissue, inf.progress, inf.notes = model, 'off', False, []
    from nucseg.apis.tiled_inference import infer_settings
    inf.settings = infer_settings(model.cfg)
    inf.predictor = _Oracle(labels, tile, overlap, scores)
    return inf.run(ArraySource(img, mpp=mpp, name='oracle'), sinks)


@pytest.fixture(scope='module')
def scene():
    """Synthetic H&E nuclei plus a ring (a nucleus with a hole) holding a
    small nucleus in its hole."""
    from nucseg.datasets.synthetic import generate_sample
    img, lab = generate_sample('he_kumar', 256, 5)
    lab = lab.copy()
    yy, xx = np.mgrid[:256, :256]
    d2 = (yy - 128)**2 + (xx - 128)**2
    lab[d2 <= 20**2] = 0
    ring, inner = (d2 <= 18**2) & (d2 > 9**2), d2 <= 5**2
    lab[ring] = lab.max() + 1
    lab[inner] = lab.max() + 1
    return img, lab


def test_geojson_round_trip_valid_polygons_and_holes(scene, tmp_path):
    import shapely.geometry
    img, lab = scene
    gj = tmp_path / 'x.geojson'
    exporter = NucleiExporter(gj, object_type='annotation',
                              classification='Tumor nucleus')
    result = _run(lab, img, [exporter])
    data = json.loads(gj.read_text())
    feats = data['features']
    assert data['type'] == 'FeatureCollection'
    assert len(feats) == result.num_instances == len(np.unique(lab)) - 1
    n_holes = 0
    for f in feats:
        assert f['geometry']['type'] == 'Polygon'
        props = f['properties']
        assert props['objectType'] == 'annotation'
        assert props['classification']['name'] == 'Tumor nucleus'
        assert {'id', 'area_px', 'mean_haematoxylin'} <= set(
            props['measurements'])
        geom = shapely.geometry.shape(f['geometry'])
        assert geom.is_valid
        n_holes += len(geom.interiors)
    assert n_holes >= 1  # the ring keeps its hole
    # Round trip: label map -> GeoJSON -> rasterised back.
    back = rasterize_geojson(gj, lab.shape)
    m = instance_metrics(lab, back)
    assert m['pq'] >= 0.98, m
    ring_id = lab[128, 128 + 13]
    # The small nucleus inside the hole survives the ring's hole.
    inner_back = back[126:131, 126:131]
    assert (inner_back > 0).all() and (inner_back != back[128, 141]).all()
    assert ring_id > 0


def test_polygon_coordinates_follow_the_pixel_corners():
    mask = np.zeros((6, 8), bool)
    mask[1:4, 2:7] = True  # 3 x 5 block
    poly = mask_polygon(mask)
    assert poly.bounds == pytest.approx((2.0, 1.0, 7.0, 4.0), abs=0.51)
    assert poly.area == pytest.approx(15, abs=1.0)
    single = np.zeros((3, 3), bool)
    single[1, 1] = True
    p1 = mask_polygon(single)
    assert p1 is not None and p1.is_valid and p1.contains(
        __import__('shapely').Point(1.5, 1.5))
    assert mask_polygon(np.zeros((3, 3), bool)) is None


def test_csv_measurements_scores_and_level0_scale(scene, tmp_path):
    img, lab = scene
    n = int(lab.max())
    scores = np.linspace(0.1, 1.0, n)
    out = tmp_path / 'x.csv'
    # The input is 0.5 um/px and the model 0.25: processed at 2x, so the
    # oracle answers with the labels upsampled 2x.
    big = cv2.resize(lab, (512, 512), interpolation=cv2.INTER_NEAREST)
    _run(big, img, [NucleiExporter(csv_path=out)], tile=192, overlap=64,
         mpp=0.5, scores=scores)
    rows = list(csv.DictReader(out.open()))
    assert list(rows[0]) == list(CSV_COLUMNS) + ['score']
    assert len(rows) == len(np.unique(lab)) - 1
    h = stain_concentrations(img)[..., 0]
    for row in rows[:20]:
        cx, cy = float(row['centroid_x']), float(row['centroid_y'])
        k = lab[int(cy), int(cx)]
        if k == 0:
            continue
        area = np.count_nonzero(lab == k)
        # Level-0 px (the input's), microns at 0.5 um/px.
        assert float(row['area_px']) == pytest.approx(area, rel=0.05)
        assert float(row['area_um2']) == pytest.approx(
            area * 0.25, rel=0.05)
        assert float(row['mean_haematoxylin']) == pytest.approx(
            h[lab == k].mean(), abs=0.05)
        assert float(row['score']) == pytest.approx(scores[k - 1],
                                                    abs=1e-4)


def test_labels_png_below_65536_tiff_above(tmp_path):
    # 67600 one-pixel instances (every other pixel of a 520 x 520 map).
    lab = np.zeros((520, 520), np.int32)
    lab[::2, ::2] = np.arange(1, 260 * 260 + 1).reshape(260, 260)
    img = np.full((520, 520, 3), 200, np.uint8)
    writer = LabelMapWriter(tmp_path / 'many')
    result = _run(lab, img, [writer], tile=1024, overlap=64)
    assert result.num_instances == 67600
    assert writer.path == tmp_path / 'many.tif' and 'TIFF' in writer.kind
    assert '67600 instances exceed' in writer.kind
    back = read_label(writer.path)
    np.testing.assert_array_equal(back > 0, lab > 0)
    assert len(np.unique(back)) == 67601
    import tifffile
    with tifffile.TiffFile(writer.path) as tif:
        assert tif.pages[0].dtype == np.int32 and tif.pages[0].is_tiled
    assert not list(tmp_path.glob('.*'))  # no temporary file left
    # Few instances: a uint16 PNG, equal to the map.
    small = lab[:40, :40]
    writer = LabelMapWriter(tmp_path / 'few')
    _run(small, img[:40, :40], [writer], tile=32, overlap=8)
    assert writer.path == tmp_path / 'few.png' and writer.kind == (
        'uint16 PNG')
    np.testing.assert_array_equal(read_label(writer.path) > 0, small > 0)


def test_streamed_png_reads_back(tmp_path):
    rng = np.random.default_rng(0)
    a = rng.integers(0, 65536, (37, 23)).astype(np.uint16)
    write_uint16_png(tmp_path / 'a.png', 37, 23, [a[:10], a[10:30],
                                                  a[30:]])
    np.testing.assert_array_equal(
        cv2.imread(str(tmp_path / 'a.png'), cv2.IMREAD_UNCHANGED), a)
    with pytest.raises(ValueError, match='rows'):
        write_uint16_png(tmp_path / 'b.png', 38, 23, [a])


def test_overlay_is_downsampled_with_contours(scene, tmp_path):
    img, lab = scene
    path = tmp_path / 'x_overlay.png'
    _run(lab, img, [OverlayWriter(path, max_side=128)])
    over = cv2.imread(str(path))
    assert over.shape == (128, 128, 3)
    plain = cv2.resize(img, (128, 128), interpolation=cv2.INTER_AREA)
    changed = np.abs(over[..., ::-1].astype(int) - plain).sum(2) > 40
    assert changed.mean() > 0.05  # nuclei coloured in
