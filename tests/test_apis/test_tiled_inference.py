"""Tiled inference: grid, stitching, seams, scale (issue 13)."""
import numpy as np
import pytest
from mmengine.config import Config
from skimage.measure import label as cc_label

from nucseg.apis import inference_model, init_model
from nucseg.apis.tiled_inference import (InstanceStitcher, RowResampler,
                                         ScaleError, TiledInferencer,
                                         TileGrid, build_tile_pipeline,
                                         estimate_nucleus_diameter,
                                         infer_settings, predict_image)
from nucseg.evaluation.functional import instance_metrics
from nucseg.utils.config_check import UnknownKeyError
from nucseg.utils.slide import ArraySource
from .synthetic_slides import (CLASSICAL, disc_image, h_threshold,
                               place_discs)


@pytest.fixture(scope='module')
def classical(repo_root):
    """The haematoxylin-watershed model with a fixed threshold: every step
    is local, so tiled and whole-image predictions are comparable."""
    return init_model(str(repo_root / CLASSICAL), device='cpu',
                      cfg_options={'model.threshold': h_threshold()})


@pytest.mark.parametrize('size,tile,overlap', [(3000, 512, 96),
                                               (1000, 1024, 128),
                                               (1025, 1024, 128),
                                               (700, 256, 64)])
def test_grid_cores_partition_the_image(size, tile, overlap):
    grid = TileGrid(size, size + 37, tile, overlap)
    owner = np.zeros((size, size + 37), np.int32)
    for t in grid:
        assert t.h <= tile and t.w <= tile
        assert t.y0 + t.h <= size and t.x0 + t.w <= size + 37
        y_lo, y_hi, x_lo, x_hi = t.core
        owner[y_lo:y_hi, x_lo:x_hi] += 1
        # A core keeps half an overlap from every inner tile edge.
        if t.inner[0]:
            assert y_lo - t.y0 >= overlap // 2
        if t.inner[1]:
            assert t.y0 + t.h - y_hi >= overlap // 2
        if t.inner[2]:
            assert x_lo - t.x0 >= overlap // 2
        if t.inner[3]:
            assert t.x0 + t.w - x_hi >= overlap // 2
    assert (owner == 1).all()  # the cores partition the image
    assert grid.ys[-1] + min(tile, size) == size  # last tile flush


@pytest.mark.parametrize('length,tile,overlap,size,count', [
    (2048, 1024, 128, 768, 3), (8192, 1024, 128, 1024, 9),
    (900, 1024, 128, 900, 1), (3000, 512, 96, 511, 7)])
def test_shrunk_tiles_cover_with_as_few_tiles(length, tile, overlap, size,
                                              count):
    grid = TileGrid(length, 10, tile, overlap, shrink=True)
    assert (grid.tile_h, len(grid.ys)) == (size, count)
    fixed = TileGrid(length, 10, tile, overlap)
    assert len(fixed.ys) == count and fixed.tile_h == min(tile, length)


def _cut_discs(gt, pred, seams_y, seams_x):
    """Ground-truth discs crossing a seam line that the prediction does not
    cover with one instance (>= 95 % of the disc, IoU > 0.8)."""
    from scipy import ndimage as ndi
    seams_y, seams_x = np.asarray(seams_y), np.asarray(seams_x)
    areas = np.bincount(pred.ravel())
    cut = []
    for k, sl in enumerate(ndi.find_objects(gt), 1):
        if sl is None:
            continue
        (y0, y1), (x0, x1) = (sl[0].start, sl[0].stop), (sl[1].start,
                                                         sl[1].stop)
        crosses = ((seams_y > y0) & (seams_y < y1)).any() or (
            (seams_x > x0) & (seams_x < x1)).any()
        if not crosses:
            continue
        disc = gt[sl] == k
        vals, counts = np.unique(pred[sl][disc], return_counts=True)
        best, inter = vals[np.argmax(counts)], counts.max()
        union = disc.sum() + areas[best] - inter
        if best == 0 or inter < 0.95 * disc.sum() or inter / union <= 0.8:
            cut.append(k)
    return cut


def test_seams_3000px_tiled_equals_whole_image(classical):
    """Issue 13's seam test: a 3000 x 3000 image with nuclei on every seam
    (tile edges and core boundaries) and their crossings; tiled vs whole
    image prediction of the same model."""
    tile, overlap = 512, 96
    grid = TileGrid(3000, 3000, tile, overlap, shrink=True)  # as run
    edges_y, edges_x = grid.seams()
    cores_y = [lo for lo, _ in grid.core_y[1:]]
    cores_x = [lo for lo, _ in grid.core_x[1:]]
    seams_y, seams_x = edges_y + cores_y, edges_x + cores_x
    rng = np.random.default_rng(0)
    discs = place_discs((3000, 3000), seams_y, seams_x, rng)
    img, gt = disc_image((3000, 3000), discs)
    on_seams = len(_cut_discs(gt, np.zeros_like(gt), seams_y, seams_x))
    assert on_seams > 300  # every seam line is crossed many times

    whole = classical.segment(img)
    inferencer = TiledInferencer(classical, tile_size=tile, overlap=overlap)
    assert len(grid) == 49
    tiled = predict_image(inferencer, img)
    assert tiled.shape == whole.shape and tiled.dtype == np.int32

    m = instance_metrics(whole, tiled)
    assert m['pq'] >= 0.98, m
    # No id reused: ids are 1..N and each id is one connected region.
    ids = np.unique(tiled)[1:]
    assert ids.tolist() == list(range(1, len(ids) + 1))
    assert cc_label(tiled, connectivity=2, background=0).max() == len(ids)
    # No nucleus cut by a straight seam line.
    assert _cut_discs(gt, tiled, seams_y, seams_x) == []
    assert _cut_discs(gt, whole, seams_y, seams_x) == []
    assert instance_metrics(gt, tiled)['pq'] > 0.95

    # The check catches naive tiling (no overlap, every instance kept) on
    # the top-left 1024 px: discs on its seams are cut.
    naive = np.zeros((1024, 1024), np.int32)
    offset = 0
    for t in TileGrid(1024, 1024, tile, 0):
        part = classical.segment(img[t.y0:t.y0 + t.h, t.x0:t.x0 + t.w])
        naive[t.y0:t.y0 + t.h, t.x0:t.x0 + t.w] = np.where(
            part > 0, part + offset, 0)
        offset += int(part.max())
    cut = _cut_discs(gt[:1024, :1024], naive, [tile], [tile])
    assert len(cut) >= 10


def test_stitcher_owner_duplicates_ids_and_rows():
    rows = {}
    st = InstanceStitcher(20, 20, 12, lambda y0, r: rows.update(
        {y0 + i: row.copy() for i, row in enumerate(r)}))
    grid = TileGrid(20, 20, 12, 4)  # starts 0, 8; cores split at 10
    tiles = list(grid)
    assert len(tiles) == 4 and grid.core_x == [(0, 10), (10, 20)]
    # Tile 0: a blob owned by it (centroid in its core) and one whose
    # centroid (x = 10) lies in tile 1's core: left to tile 1.
    lab0 = np.zeros((12, 12), np.int32)
    lab0[2:5, 2:5] = 7
    lab0[2:5, 9:12] = 3
    view, first, last, _ = st.add(tiles[0], lab0)
    assert (first, last) == (1, 1) and (view[2:5, 2:5] == 1).all()
    assert st.stats.not_owned == 1
    # Tile 1 (x0 = 8) places that blob (new id 2, its score kept) and not
    # a blob at x = 8, whose owner is tile 0.
    lab1 = np.zeros((12, 12), np.int32)
    lab1[2:5, 1:4] = 5
    lab1[2:5, 0:1] = 9
    view, first, last, scores = st.add(tiles[1], lab1,
                                       scores=np.arange(1, 10) / 10)
    assert (first, last) == (2, 2)
    assert scores.tolist() == [0.5]  # the score of tile id 5
    assert (view[2:5, 1:4] == 2).all() and (view[2:5, 0] == 0).all()
    # Tile 2 (y0 = 8): rows above it are final and were handed over.
    lab2 = np.zeros((12, 12), np.int32)
    lab2[5:8, 2:5] = 1
    st.add(tiles[2], lab2)
    assert sorted(rows) == list(range(8))
    with pytest.raises(ValueError, match='raster order'):
        st.add(tiles[0], lab0)
    st.add(tiles[3], np.zeros((12, 12), np.int32))
    st.finish()
    assert sorted(rows) == list(range(20))
    full = np.stack([rows[i] for i in range(20)])
    assert np.unique(full).tolist() == [0, 1, 2, 3]
    assert st.num_instances == 3 and (full[13:16, 2:5] == 3).all()


def test_stitcher_drops_duplicates_and_trims():
    st = InstanceStitcher(10, 10, 10)
    grid = TileGrid(10, 10, 10, 0)
    tile = next(iter(grid))
    st.band[0:4, 0:4] = 99  # pretend an earlier tile placed it
    lab = np.zeros((10, 10), np.int32)
    lab[0:4, 1:5] = 1  # 75 % covered: duplicate
    lab[3:8, 3:8] = 2  # 1 px covered: trimmed, kept
    _, first, last, _ = st.add(tile, lab)
    assert (first, last) == (1, 1)
    assert st.stats.duplicates == 1 and st.stats.trimmed == 1
    assert st.band[3, 3] == 99 and (st.band[4:8, 4:8] == 1).all()


@pytest.mark.parametrize('src,dst', [((7, 9), (7, 9)), ((10, 8), (20, 16)),
                                     ((21, 13), (7, 5)), ((5, 5), (12, 3))])
def test_row_resampler_streams_nearest(src, dst):
    rng = np.random.default_rng(0)
    a = rng.integers(0, 100, src)
    out = np.full(dst, -1)

    def emit(y0, rows):
        out[y0:y0 + len(rows)] = rows

    rs = RowResampler(src, dst, emit)
    for y in range(0, src[0], 3):
        rs(y, a[y:y + 3])
    j, i = np.arange(dst[0]), np.arange(dst[1])
    ref = a[np.minimum(((j + 0.5) * src[0] / dst[0]).astype(int),
                       src[0] - 1)][:, np.minimum(
                           ((i + 0.5) * src[1] / dst[1]).astype(int),
                           src[1] - 1)]
    np.testing.assert_array_equal(out, ref)


def test_scale_from_mpp_and_the_unknown_scale_check(classical):
    inferencer = TiledInferencer(classical, tile_size=256, overlap=64)
    rng = np.random.default_rng(1)

    def discs_of(diameter, size=600):
        r = diameter / 2
        return disc_image((size, size), place_discs(
            (size, size), [], [], rng, r_range=(r - 1, r + 1),
            random_count=300))[0]

    img = discs_of(24)
    assert estimate_nucleus_diameter(img) == pytest.approx(24, rel=0.15)
    # Known pixel size: 0.5 um/px input, model at 0.25 -> read at 2x.
    plan = inferencer.plan_scale(ArraySource(img, mpp=0.5))
    assert (plan.height, plan.width) == (1200, 1200)
    assert plan.downsample == pytest.approx(0.5) and plan.note == ''
    labels = predict_image(inferencer, img[:200, :260], mpp=0.5)
    assert labels.shape == (200, 260)  # back at the input's resolution
    # Unknown pixel size, nuclei of the expected size: assumed, noted.
    source = ArraySource(img)
    plan = inferencer.plan_scale(source)
    assert plan.downsample == 1.0 and 'assumed' in plan.note
    assert source.notes == []
    # Nuclei 3x too large: processed, with a warning naming the file.
    source = ArraySource(discs_of(72), name='big.png')
    inferencer.plan_scale(source)
    assert len(source.notes) == 1 and 'big.png' in source.notes[0]
    assert '--mpp' in source.notes[0]
    # 6x too large: refused by name.
    with pytest.raises(ScaleError, match=r'huge\.png.*--mpp'):
        inferencer.plan_scale(ArraySource(discs_of(144, 1024),
                                          name='huge.png'))
    # No stain contrast: no estimate.
    assert estimate_nucleus_diameter(np.full((300, 300, 3), 240,
                                             np.uint8)) is None


def test_infer_settings_and_tile_pipeline(repo_root):
    cfg = Config.fromfile(
        str(repo_root / 'configs/sprout/sprout_weightfree.py'))
    s = infer_settings(cfg, tile_size=512)
    assert (s['mpp'], s['tile_size'], s['overlap']) == (0.25, 512, 128)
    with pytest.raises(UnknownKeyError, match='tile_sise'):
        infer_settings(dict(infer_cfg=dict(tile_sise=3)))
    with pytest.raises(ValueError, match='overlap'):
        infer_settings(cfg, overlap=600)
    from nucseg.utils import register_all_modules
    register_all_modules()
    # SPROUT's aspect-keeping resize to 1024 is a whole-image setting:
    # dropped (tiles are read at the config's mpp).
    pipe, dropped, pad = build_tile_pipeline(cfg)
    assert [type(t).__name__ for t in pipe.transforms] == [
        'PackNucleiInputs']
    assert dropped and 'keep_ratio=True' in dropped[0] and not pad
    # A fixed model input size (SAM's 1024 x 1024) is kept; small tiles
    # are then padded so that every tile is resized by the same factor.
    cfg.test_dataloader.dataset.pipeline[1].keep_ratio = False
    pipe, dropped, pad = build_tile_pipeline(cfg)
    assert [type(t).__name__ for t in pipe.transforms] == [
        'Resize', 'PackNucleiInputs'] and pad and not dropped


def test_inference_model_tiles_a_trained_unet(repo_root, tmp_path):
    """The demo U-Net (tiny, seeded weights) through inference_model on an
    image larger than its tile: the map has the image's size, and one
    tile covering the whole image gives a valid map too."""
    import torch

    from nucseg.registry import MODELS
    from nucseg.utils import register_all_modules
    from nucseg.utils.io import write_image
    register_all_modules()
    cfg = Config.fromfile(str(
        repo_root / 'configs/unet/'
        'unet-s5-c16_contour_1xb4-300it_synth-he-256x256.py'))
    opts = {'model.backbone.base_channels': 4,
            'model.decode_head.in_channels': 4,
            'model.decode_head.channels': 4}
    cfg.merge_from_dict(opts)
    torch.manual_seed(0)
    ckpt = tmp_path / 'tiny.pth'
    torch.save(dict(state_dict=MODELS.build(cfg.model).state_dict()), ckpt)
    model = init_model(cfg, str(ckpt), device='cpu')
    rng = np.random.default_rng(0)
    img, _ = disc_image((300, 420), place_discs((300, 420), [], [], rng,
                                                r_range=(6, 9),
                                                random_count=80))
    path = tmp_path / 'x.png'
    write_image(path, img)
    with pytest.warns(UserWarning, match='assumed'):
        inst = inference_model(model, path, tile_size=128, overlap=32)
    assert inst.shape == (300, 420) and inst.dtype == np.int32
    one = inference_model(model, img, tile_size=512, mpp=0.5)
    assert one.shape == (300, 420)
