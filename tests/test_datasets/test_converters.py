"""Tests of the data set converters on tiny synthetic source trees."""
import ast
import csv
import importlib.util
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import cv2
import numpy as np
import pytest
import scipy.io
from PIL import Image

from nucseg.datasets.converters import (AnnotationError,
                                        IncompleteConversionError,
                                        MissingAnnotationError,
                                        SourceLayoutError, convert_bbbc039,
                                        convert_cpm17, convert_cryonuseg,
                                        convert_dsb2018, convert_monuseg,
                                        convert_tnbc, label_by_value,
                                        load_mat_inst_map, paint_instances,
                                        parse_monuseg_xml, relabel_sequential,
                                        rle_decode, rle_encode)
from nucseg.datasets.converters.layout import write_sample
from nucseg.datasets.converters.monuseg import rasterize_polygon
from nucseg.utils.io import LabelError, read_image, read_label

REPO = Path(__file__).resolve().parents[2]
CONVERTER_DIR = REPO / 'nucseg' / 'datasets' / 'converters'
TOOLS = REPO / 'tools' / 'dataset_converters'


# ----------------------------------------------------------------- helpers
def _rgb(h, w, seed=0):
    return np.random.default_rng(seed).integers(
        0, 256, (h, w, 3), dtype=np.uint8)


def _write_rgb(path, rgb):
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


def _write_rgba_png(path, rgb):
    path.parent.mkdir(parents=True, exist_ok=True)
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    Image.fromarray(rgba, 'RGBA').save(path)


def _write_grey(path, arr):
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), arr)


def _outputs(root, name):
    img = read_image(root / 'images' / f'{name}.png')
    lab = read_label(root / 'labels' / f'{name}.png')
    raw = cv2.imread(str(root / 'labels' / f'{name}.png'),
                     cv2.IMREAD_UNCHANGED)
    assert raw.dtype == np.uint16
    return img, lab


def _split(root, split):
    return (root / 'splits' / f'{split}.txt').read_text().split()


def _assert_sequential(lab):
    ids = np.unique(lab)
    assert ids[0] == 0
    np.testing.assert_array_equal(ids[1:], np.arange(1, ids.size))


# --------------------------------------------------------------- MoNuSeg
SQUARE = [(15.3, 15.2), (20.6, 15.4), (20.4, 20.7), (15.1, 20.5)]
REGIONS = [
    ('1', [(8.4, 8.2), (40.6, 6.9), (44.2, 38.3), (-5.7, 40.1)]),  # big
    ('2', [(30.2, 20.1), (58.7, 20.4), (58.2, 50.6), (30.4, 50.3)]),
    ('3', SQUARE),  # inside region 1
    ('4', SQUARE),  # exact duplicate of 3: hidden, must get pixels back
    ('5', [(50.2, 5.1), (55.4, 5.3)]),  # degenerate: two vertices
    ('6', [(70.0, 70.0), (80.0, 70.0), (80.0, 80.0)]),  # outside 64x64
]


def _xml_text(regions):
    parts = [
        '<Annotations MicronsPerPixel="0.252000">'
        '<Annotation Id="1" Type="4"><Attributes/><Regions>'
        '<RegionAttributeHeaders/>'
    ]
    for rid, verts in regions:
        parts.append(f'<Region Id="{rid}" Type="0"><Attributes/><Vertices>')
        parts += [f'<Vertex X="{x:.6f}" Y="{y:.6f}"/>' for x, y in verts]
        parts.append('</Vertices></Region>')
    parts.append('</Regions></Annotation></Annotations>')
    return '\n'.join(parts)


def _monuseg_tree(root, flat=False, names=('case-A', ), regions=REGIONS):
    img_dir = root if flat else root / 'Tissue_Images'
    ann_dir = root if flat else root / 'Annotations'
    ann_dir.mkdir(parents=True, exist_ok=True)
    images = {}
    for k, name in enumerate(names):
        images[name] = _rgb(64, 64, k)
        _write_rgb(img_dir / f'{name}.tif', images[name])
        (ann_dir / f'{name}.xml').write_text(_xml_text(regions))
    return images


def test_rasterize_polygon_convention():
    # X is the column, Y the row; rounded vertices, boundary included.
    pix, deg = rasterize_polygon(
        np.array([[1.2, 10.4], [3.8, 10.0], [4.1, 12.3], [0.9, 11.6]]),
        (16, 8))
    mask = np.zeros(16 * 8, bool)
    mask[pix] = True
    mask = mask.reshape(16, 8)
    assert not deg
    assert mask[10:13, 1:5].all() and mask.sum() == 12
    # Parts outside the image are clipped, not wrapped around.
    pix, _ = rasterize_polygon(
        np.array([[-10.0, -10.0], [2.0, -10.0], [2.0, 2.0], [-10.0, 2.0]]),
        (16, 8))
    assert sorted(pix) == [0, 1, 2, 8, 9, 10, 16, 17, 18]
    # A single vertex still gives its pixel; one fully outside gives none.
    pix, deg = rasterize_polygon(np.array([[5.4, 7.6]]), (16, 8))
    assert deg and list(pix) == [8 * 8 + 5]
    assert rasterize_polygon(np.array([[30., 30.], [40., 30.], [40., 40.]]),
                             (16, 8))[0].size == 0


def test_parse_monuseg_xml_keeps_every_region(tmp_path):
    xml = tmp_path / 'a.xml'
    xml.write_text(_xml_text(REGIONS))
    with pytest.warns(UserWarning, match=r'Region Id=6'):
        label, report = parse_monuseg_xml(xml, (64, 64), return_report=True)
    assert label.dtype == np.int32 and label.shape == (64, 64)
    # Regions 1-5 kept with ids 1-5 in document order; 6 lies outside.
    np.testing.assert_array_equal(report.ids, [1, 2, 3, 4, 5, 0])
    assert [i for i, _ in report.dropped] == [5]
    _assert_sequential(label)
    assert label.max() == 5
    counts = np.bincount(label.ravel(), minlength=6)
    assert (counts[1:] > 0).all()
    # The small contained square beats the big region around it and its
    # duplicate got half of the square back.
    square = label[15:21, 15:21]
    assert set(np.unique(square)) == {3, 4}
    assert abs(int(counts[3]) - int(counts[4])) <= 1
    assert report.restored == [2]  # painted first of the tie, so hidden
    # Overlap of regions 1 and 2: the smaller (2) wins.
    assert label[30, 35] == 2
    assert report.num_overlap_pairs == 4  # 1-2, 1-3, 1-4 and 3-4
    assert report.degenerate == [4]
    assert label[5, 50:56].tolist() == [5] * 6
    # The big region keeps its pixels left of x=0 clipped at column 0.
    assert label[35, 0] == 1
    # Document order does not matter: small regions listed first win too.
    xml.write_text(_xml_text(REGIONS[::-1]))
    with pytest.warns(UserWarning, match=r'Region Id=6'):
        rev = parse_monuseg_xml(xml, (64, 64))
    assert rev.max() == 5 and set(np.unique(rev[15:21, 15:21])) == {2, 3}
    assert rev[30, 35] == 4  # region 2, fourth in reversed order


def test_parse_monuseg_xml_errors(tmp_path):
    bad = tmp_path / 'bad.xml'
    bad.write_text('<Annotations><Region Id="1">')
    with pytest.raises(AnnotationError, match='bad.xml'):
        parse_monuseg_xml(bad, (8, 8))
    bad.write_text('<Annotations><Region Id="7"><Vertices><Vertex X="a" '
                   'Y="1"/></Vertices></Region></Annotations>')
    with pytest.raises(AnnotationError, match='Region Id=7'):
        parse_monuseg_xml(bad, (8, 8))


@pytest.mark.parametrize('flat', [False, True])
def test_convert_monuseg_layouts(tmp_path, flat):
    src, out = tmp_path / 'src', tmp_path / 'out'
    images = _monuseg_tree(src, flat=flat, names=('case-A', 'case-B'))
    with pytest.warns(UserWarning):
        summary = convert_monuseg(src, out)
    split = 'test' if flat else 'train'
    assert _split(out, split) == ['case-A', 'case-B']
    for name, rgb in images.items():
        img, lab = _outputs(out, name)
        np.testing.assert_array_equal(img, rgb)
        assert lab.max() == 5
    assert summary.total('regions') == 12
    assert summary.total('dropped') == 2
    assert any('DROPPED case-A' in line for line in summary.lines())


def test_convert_monuseg_missing_annotation(tmp_path):
    src = tmp_path / 'src'
    _monuseg_tree(src, names=('case-A', ))
    _write_rgb(src / 'Tissue_Images' / 'case-Z.tif', _rgb(64, 64))
    with pytest.raises(MissingAnnotationError, match='case-Z'):
        convert_monuseg(src, tmp_path / 'out')
    with pytest.warns(UserWarning):
        summary = convert_monuseg(
            src, tmp_path / 'out', split='val', skip_missing=True)
    assert summary.skipped == ['case-Z']
    assert _split(tmp_path / 'out', 'val') == ['case-A']
    with pytest.raises(SourceLayoutError):
        convert_monuseg(tmp_path / 'out' / 'splits', tmp_path / 'o2')


@pytest.mark.parametrize('nproc', [1, 2])
def test_one_malformed_xml_does_not_stop_the_conversion(
        tmp_path, repo_root, nproc):
    """The bad sample is listed, every other one written and put in the
    split, and the command line exits non-zero."""
    src, out = tmp_path / 'src', tmp_path / 'out'
    _monuseg_tree(src, names=('case-A', 'case-B', 'case-C'),
                  regions=REGIONS[:3])
    (src / 'Annotations' / 'case-A.xml').write_text('<Annotations><Reg')
    with pytest.raises(IncompleteConversionError,
                       match=r'1 of 3 samples failed.*case-A\.xml') as err:
        convert_monuseg(src, out, nproc=nproc)
    summary = err.value.summary
    assert [f.name for f in summary.failures] == ['case-A']
    assert _split(out, 'train') == ['case-B', 'case-C']
    assert not (out / 'images' / 'case-A.png').exists()
    assert any(line.startswith('  FAILED case-A') for line in summary.lines())
    lst = tmp_path / 'kumar.txt'
    lst.write_text('case-A\ncase-C\n')
    with pytest.raises(IncompleteConversionError):
        convert_monuseg(src, tmp_path / 'o2', split_files=[lst])
    assert _split(tmp_path / 'o2', 'kumar') == ['case-C']
    if nproc == 1:
        proc = subprocess.run(
            [sys.executable, 'tools/dataset_converters/monuseg.py',
             str(src), str(tmp_path / 'o3')], cwd=repo_root,
            capture_output=True, text=True, timeout=120)
        assert proc.returncode == 1
        assert 'wrote 2 samples' in proc.stdout
        assert 'case-A' in proc.stderr and 'case-A.xml' in proc.stderr
        assert _split(tmp_path / 'o3', 'train') == ['case-B', 'case-C']


# ------------------------------------------------------- paint / relabel
def test_paint_instances_rules():
    shape = (4, 4)
    big = np.arange(16)
    small = np.array([5, 6])
    # Larger first: the small region wins where they overlap, whatever
    # their input order.
    label, rep = paint_instances([big, small], shape)
    assert label.ravel()[5] == 2 and label.ravel()[0] == 1
    assert rep.num_overlap_pairs == 1 and rep.contested_pixels == 2
    label, rep = paint_instances([small, big], shape)
    assert label.ravel()[[5, 6]].tolist() == [1, 1]
    assert (label == 2).sum() == 14 and not rep.restored
    # Exact duplicates are split; a one-pixel duplicate cannot be kept.
    label, rep = paint_instances([small, small, [0], [0]], shape,
                                 names=list('abcd'))
    assert sorted(label.ravel()[[5, 6]]) == [1, 2]
    assert rep.as_dict()['dropped'] == [
        ('c', 'hidden by other regions; no pixel could be given back')]
    np.testing.assert_array_equal(rep.ids, [1, 2, 0, 3])
    # A region hidden by two smaller ones that extend beyond it takes its
    # pixels back while they keep their outer parts.
    mid = np.array([5, 6, 9, 10])
    left, right = np.array([4, 5, 9]), np.array([6, 7, 10])
    label, rep = paint_instances([mid, left, right], shape)
    assert rep.restored == [0] and rep.num_kept == 3
    assert set(label.ravel()[mid]) == {1}


def test_relabel_and_label_by_value():
    lab = np.array([[0, 7, 7], [300, 0, 2]])
    np.testing.assert_array_equal(
        relabel_sequential(lab), [[0, 2, 2], [3, 0, 1]])
    code = np.array([[1, 1, 0, 1], [2, 3, 0, 1], [0, 0, 0, 0]])
    out = label_by_value(code)
    assert out.max() == 4  # 1-left, 1-right, 2, 3
    assert out[0, 0] == out[0, 1] != out[0, 3]


def test_write_sample_rejects_too_many_ids(tmp_path):
    label = np.arange(1, 256 * 256 + 1, dtype=np.int32).reshape(256, 256)
    with pytest.raises(LabelError, match='65536 instances'):
        write_sample(tmp_path, 'x', _rgb(256, 256), label, 'img.png',
                     'ann.mat')


# ------------------------------------------------------------------- TNBC
def test_convert_tnbc(tmp_path):
    src = tmp_path / 'TNBC_NucleiSegmentation'
    rgb = _rgb(32, 32)
    _write_rgba_png(src / 'Slide_01' / '01_1.png', rgb)
    gt = np.zeros((32, 32), np.uint8)
    gt[2:6, 2:6] = 255
    gt[6:10, 6:10] = 255  # touches the first only at a corner
    gt[20:25, 20:30] = 255
    _write_grey(src / 'GT_01' / '01_1.png', gt)
    out = tmp_path / 'out'
    convert_tnbc(tmp_path, out)  # parent of TNBC_NucleiSegmentation
    img, lab = _outputs(out, '01_1')
    np.testing.assert_array_equal(img, rgb)
    assert lab.max() == 3
    np.testing.assert_array_equal(lab > 0, gt > 0)
    assert _split(out, 'all') == ['01_1']
    convert_tnbc(src, out, split='train', connectivity=8)
    assert read_label(out / 'labels' / '01_1.png').max() == 2
    (src / 'GT_01' / '01_1.png').unlink()
    with pytest.raises(MissingAnnotationError, match='GT_01'):
        convert_tnbc(src, out)


# --------------------------------------------------------------- CryoNuSeg
def test_convert_cryonuseg(tmp_path):
    src = tmp_path / 'cryo'
    rgb = _rgb(24, 24)
    _write_rgb(src / 'tissue images' / 'Human_Larynx_01.tif', rgb)
    lab = np.zeros((24, 24), np.uint16)
    lab[1:5, 1:5], lab[10:14, 3:9], lab[18:22, 18:22] = 5, 300, 9
    ann1 = src / 'Annotator 1 (biologist)' / 'label masks modify'
    _write_grey(ann1 / 'Human_Larynx_01.tif', lab)
    ann2 = (src / 'Annotator 2 (bioinformatician)' /
            'Annotator 2 (bioinformatician)' / 'label masks modify')
    _write_grey(ann2 / 'Human_Larynx_01.tif', (lab > 0).astype(np.uint16))
    out = tmp_path / 'out'
    convert_cryonuseg(src, out)
    img, got = _outputs(out, 'Human_Larynx_01')
    np.testing.assert_array_equal(img, rgb)
    np.testing.assert_array_equal(got, relabel_sequential(lab))
    assert got.max() == 3
    convert_cryonuseg(src, out, annotation='ann2')
    assert read_label(out / 'labels' / 'Human_Larynx_01.png').max() == 1
    convert_cryonuseg(src, out, label_dir=ann1.relative_to(src))
    with pytest.raises(SourceLayoutError, match='ann1_round2'):
        convert_cryonuseg(src, out, annotation='ann1_round2')


# ------------------------------------------------------------------ CPM-17
def test_convert_cpm17(tmp_path):
    src = tmp_path / 'cpm17'
    inst = np.zeros((20, 30), np.float64)  # HoVer-Net stores doubles
    inst[2:8, 2:8], inst[10:15, 20:28] = 7, 3
    for k, split in enumerate(('train', 'test')):
        _write_rgba_png(src / split / 'Images' / 'image_00.png',
                        _rgb(20, 30, k))
        (src / split / 'Labels').mkdir(parents=True)
        scipy.io.savemat(str(src / split / 'Labels' / 'image_00.mat'),
                         {'inst_map': inst, 'inst_type': np.ones((2, 1))})
    out = tmp_path / 'out'
    convert_cpm17(src, out)
    assert _split(out, 'train') == ['train_image_00']
    assert _split(out, 'test') == ['test_image_00']
    img, lab = _outputs(out, 'test_image_00')
    np.testing.assert_array_equal(img, _rgb(20, 30, 1))
    assert lab[3, 3] == 2 and lab[12, 22] == 1 and lab.max() == 2


def test_load_mat_inst_map_errors(tmp_path):
    path = tmp_path / 'x.mat'
    scipy.io.savemat(str(path), {'other': np.zeros((2, 2))})
    with pytest.raises(AnnotationError, match=r"x\.mat: no variable"):
        load_mat_inst_map(path)
    scipy.io.savemat(str(path), {'inst_map': np.full((2, 2), 0.5)})
    with pytest.raises(AnnotationError, match='not an integer map'):
        load_mat_inst_map(path)
    # A MATLAB v7.3 header: SciPy refuses it and the error names the file
    # whether h5py is missing or cannot read the (fake) HDF5 body.
    header = b'MATLAB 7.3 MAT-file, Platform: GLNXA64'.ljust(116, b' ')
    v73 = tmp_path / 'v73.mat'
    v73.write_bytes(header + b'\0' * 8 + b'\x00\x02IM' + b'\0' * 512)
    with pytest.raises(AnnotationError, match=r'v73\.mat'):
        load_mat_inst_map(v73)


# ----------------------------------------------------------------- BBBC039
def test_convert_bbbc039(tmp_path):
    src = tmp_path / 'bbbc039'
    rng = np.random.default_rng(3)
    names = ['IXMtest_A02_s1_w1', 'IXMtest_B03_s2_w1', 'IXMtest_C04_s3_w1']
    code = np.zeros((26, 34), np.uint8)
    code[1:5, 1:5] = 1  # isolated nuclei share code 1
    code[1:5, 20:25] = 1
    code[12:18, 5:10] = 2  # two touching nuclei: codes 2 and 3
    code[12:18, 10:16] = 3
    for name in names:
        grey = rng.integers(200, 4000, (26, 34)).astype(np.uint16)
        _write_grey(src / 'images' / f'{name}.tif', grey)
        rgb_mask = np.dstack([code, np.zeros_like(code), code * 0 + 7])
        _write_rgb(src / 'masks' / f'{name}.png', rgb_mask)
    (src / 'metadata').mkdir()
    for stem, name in zip(('training', 'validation', 'test'), names):
        (src / 'metadata' / f'{stem}.txt').write_text(f'{name}.png\n')
    out = tmp_path / 'out'
    convert_bbbc039(src, out)
    assert _split(out, 'train') == [names[0]]
    assert _split(out, 'val') == [names[1]]
    assert _split(out, 'test') == [names[2]]
    img, lab = _outputs(out, names[0])
    src_img = cv2.imread(str(src / 'images' / f'{names[0]}.tif'),
                         cv2.IMREAD_UNCHANGED)
    assert src_img.dtype == np.uint16 and img.dtype == np.uint8
    assert (img[..., 0] == img[..., 1]).all()
    # Brighter source pixels stay brighter after the 16 -> 8 bit rescale.
    assert np.corrcoef(src_img.ravel(), img[..., 0].ravel())[0, 1] > 0.99
    assert lab.max() == 4
    assert lab[2, 2] != lab[2, 22] and lab[14, 7] != lab[14, 12]


# ----------------------------------------------------------------- DSB2018
def _encode_rle(mask):
    """Independent tiny RLE encoder: 1-indexed, column-major runs."""
    flat = mask.T.ravel()
    runs, k = [], 0
    while k < flat.size:
        if flat[k]:
            start = k
            while k < flat.size and flat[k]:
                k += 1
            runs += [start + 1, k - start]
        else:
            k += 1
    return ' '.join(map(str, runs))


def test_rle_decode_column_major():
    # 3x2 image, pixels numbered 1..6 down the columns: "2 2" = (1,0),(2,0)
    assert rle_decode('2 2', (3, 2)).tolist() == [2, 4]
    # "3 2" = pixels 3, 4 = (2,0), (0,1) -> row-major flat 4, 1
    assert rle_decode('3 2', (3, 2)).tolist() == [1, 4]
    rng = np.random.default_rng(0)
    for _ in range(5):
        mask = rng.random((7, 5)) > 0.5
        flat = rle_decode(_encode_rle(mask), mask.shape)
        np.testing.assert_array_equal(flat, np.flatnonzero(mask.ravel()))
        assert rle_encode(mask) == _encode_rle(mask)
    for bad in ('1 2 3', '0 2', '5 9', '1 x'):
        with pytest.raises(AnnotationError):
            rle_decode(bad, (3, 2))


def _dsb_tree(root, image_id, rgb, masks):
    _write_rgba_png(root / image_id / 'images' / f'{image_id}.png', rgb)
    for k, m in enumerate(masks):
        _write_grey(root / image_id / 'masks' / f'm{k}.png',
                    m.astype(np.uint8) * 255)


def test_convert_dsb2018_masks_and_rle(tmp_path):
    src = tmp_path / 'stage1_train'
    masks = [np.zeros((16, 20), bool) for _ in range(3)]
    masks[0][1:6, 1:9] = True
    masks[1][4:7, 7:10] = True  # overlaps mask 0 (annotation error)
    masks[2][10:14, 12:18] = True
    rgb = _rgb(16, 20)
    _dsb_tree(src, 'abc123', rgb, masks)
    out = tmp_path / 'out'
    summary = convert_dsb2018(src, out)
    img, lab = _outputs(out, 'abc123')
    np.testing.assert_array_equal(img, rgb)
    assert lab.max() == 3 and lab[5, 8] == 2  # the smaller mask wins
    assert summary.total('overlap_pairs') == 1
    assert _split(out, 'train') == ['abc123']
    # The same labels from an RLE table (with Height/Width/Usage).
    table = tmp_path / 'stage1_solution.csv'
    with open(table, 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(['ImageId', 'EncodedPixels', 'Height', 'Width',
                         'Usage'])
        for m in masks:
            writer.writerow(['abc123', _encode_rle(m), 16, 20, 'Public'])
    out2 = tmp_path / 'out2'
    convert_dsb2018(src, out2, split='test', rle_csv=table)
    np.testing.assert_array_equal(_outputs(out2, 'abc123')[1], lab)
    assert _split(out2, 'test') == ['abc123']
    with pytest.raises(SourceLayoutError):  # Usage filter leaves nothing
        convert_dsb2018(src, out2, rle_csv=table, usage=['Private'])


def test_convert_dsb2018_errors(tmp_path):
    src = tmp_path / 'stage1_test'
    _write_rgba_png(src / 'img1' / 'images' / 'img1.png', _rgb(8, 8))
    with pytest.raises(MissingAnnotationError, match='img1'):
        convert_dsb2018(src, tmp_path / 'out')
    table = tmp_path / 't.csv'
    table.write_text('ImageId,EncodedPixels,Height,Width\nimg1,1 3,9,8\n')
    # A per-sample problem: reported (with the others converted).
    with pytest.raises(IncompleteConversionError, match='img1 is 9x8'):
        convert_dsb2018(src, tmp_path / 'out', rle_csv=table)
    table.write_text('ImageId,Pixels\nimg1,1 3\n')
    with pytest.raises(AnnotationError, match='EncodedPixels'):
        convert_dsb2018(src, tmp_path / 'out', rle_csv=table)


# --------------------------------------------------------- split files
def test_extra_split_files(tmp_path):
    src, out = tmp_path / 'src', tmp_path / 'out'
    _monuseg_tree(src, names=('case-A', 'case-B'), regions=REGIONS[:3])
    lst = tmp_path / 'kumar_test.txt'
    lst.write_text('# comment\ncase-B.tif\n\n')
    convert_monuseg(src, out, split_files=[lst])
    assert _split(out, 'kumar_test') == ['case-B']
    lst.write_text('case-C\n')
    with pytest.raises(FileNotFoundError, match='case-C'):
        convert_monuseg(src, out, split_files=[lst])


# -------------------------------------------------- no torch, CLI tools
def test_converter_modules_do_not_import_torch():
    heavy = {'torch', 'mmseg', 'mmcv', 'mmdet', 'mmengine', 'torchvision'}
    for path in CONVERTER_DIR.glob('*.py'):
        tree = ast.parse(path.read_text())
        for node in tree.body:  # module-level imports only
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                mods = [node.module or '']
            else:
                continue
            for mod in mods:
                assert mod.split('.')[0] not in heavy, (path.name, mod)
                assert mod not in ('nucseg.registry', 'nucseg.datasets')


def _load_tool(name):
    spec = importlib.util.spec_from_file_location(f'_tool_{name}',
                                                  TOOLS / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_monuseg_subprocess(tmp_path, repo_root):
    src, out = tmp_path / 'src', tmp_path / 'out'
    _monuseg_tree(src, names=('case-A', 'case-B'))
    proc = subprocess.run([
        sys.executable, 'tools/dataset_converters/monuseg.py',
        str(src),
        str(out), '--nproc', '2', '--split', 'train'
    ],
                          cwd=repo_root,
                          capture_output=True,
                          text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert 'wrote 2 samples with 10 instances' in proc.stdout
    assert '2 dropped' in proc.stdout
    assert _split(out, 'train') == ['case-A', 'case-B']


def test_cli_tools_in_process(tmp_path, capsys):
    src = tmp_path / 'tnbc'
    _write_rgba_png(src / 'Slide_02' / '02_1.png', _rgb(8, 8))
    gt = np.zeros((8, 8), np.uint8)
    gt[1:3, 1:3] = 255
    _write_grey(src / 'GT_02' / '02_1.png', gt)
    assert _load_tool('tnbc').main([str(src), str(tmp_path / 'o1')]) == 0
    assert 'TNBC: wrote 1 samples with 1 instances' in capsys.readouterr().out
    dsb = tmp_path / 'dsb'
    _dsb_tree(dsb, 'id0', _rgb(8, 8), [gt > 0])
    assert _load_tool('dsb2018').main([str(dsb), str(tmp_path / 'o2')]) == 0
    cpm = tmp_path / 'cpm' / 'train'
    _write_rgb(cpm / 'Images' / 'image_00.png', _rgb(8, 8))
    (cpm / 'Labels').mkdir()
    scipy.io.savemat(str(cpm / 'Labels' / 'image_00.mat'), {'inst_map': gt})
    assert _load_tool('cpm17').main(
        [str(tmp_path / 'cpm'), str(tmp_path / 'o3')]) == 0
    # Input errors exit with status 1 and a message naming the problem.
    assert _load_tool('bbbc039').main([str(src), str(tmp_path / 'o4')]) == 1
    assert 'images/ and masks/' in capsys.readouterr().err
    assert _load_tool('cryonuseg').main([str(src), str(tmp_path / 'o5')
                                         ]) == 1
    assert _load_tool('monuseg').main(
        [str(tmp_path / 'nowhere'), str(tmp_path / 'o6')]) == 1
    assert 'error: MoNuSeg source folder not found' in capsys.readouterr(
    ).err


# ------------------------------------------------- real MoNuSeg samples
def test_monuseg_real_samples(shared_data, tmp_path):
    src = shared_data / 'monuseg_raw'
    if not src.is_dir():
        pytest.skip('monuseg_raw sample not present')
    out = tmp_path / 'monuseg'
    summary = convert_monuseg(src, out)
    xmls = sorted((src / 'Annotations').glob('*.xml'))
    assert len(summary.results) == len(xmls) > 0
    for xml in xmls:
        num_regions = len(list(ET.parse(xml).getroot().iter('Region')))
        img, lab = _outputs(out, xml.stem)
        assert lab.shape == (1000, 1000)
        assert np.unique(lab).size - 1 == num_regions == lab.max()
        tif = cv2.imread(str(src / 'Tissue_Images' / f'{xml.stem}.tif'),
                         cv2.IMREAD_COLOR)
        np.testing.assert_array_equal(img, cv2.cvtColor(tif,
                                                        cv2.COLOR_BGR2RGB))
    assert summary.total('dropped') == 0
    assert summary.total('overlapping') > 0
    assert _split(out, 'train') == [x.stem for x in xmls]


def _same_partition(a, b):
    """True if two label maps group the same pixels (ids may differ)."""
    if ((a > 0) != (b > 0)).any():
        return False
    pairs = np.unique(np.stack([a[a > 0], b[a > 0]]), axis=1)
    return pairs.shape[1] == np.unique(a[a > 0]).size == np.unique(
        b[b > 0]).size


def test_dsb2018_round_trip_real_labels(shared_data, tmp_path):
    """Real DSB label maps -> per-nucleus masks and RLE -> same maps."""
    sample = shared_data / 'fluo_nuclei_sample'
    if not sample.is_dir():
        pytest.skip('fluo_nuclei_sample not present')
    src, rows = tmp_path / 'stage1', []
    for path in sorted((sample / 'labels').glob('*.png'))[:2]:
        lab = read_label(path)
        rgb = read_image(sample / 'images' / path.name)
        ids = np.unique(lab)[1:]
        _dsb_tree(src, path.stem, rgb, [lab == k for k in ids])
        rows += [[path.stem, _encode_rle(lab == k), *lab.shape]
                 for k in ids]
    table = tmp_path / 'labels.csv'
    with open(table, 'w', newline='') as f:
        csv.writer(f).writerows([['ImageId', 'EncodedPixels', 'Height',
                                  'Width']] + rows)
    convert_dsb2018(src, tmp_path / 'm')
    convert_dsb2018(src, tmp_path / 'r', rle_csv=table)
    for folder in sorted(src.iterdir()):
        ref = read_label(sample / 'labels' / f'{folder.name}.png')
        for out in (tmp_path / 'm', tmp_path / 'r'):
            img, lab = _outputs(out, folder.name)
            assert _same_partition(ref, lab)
            np.testing.assert_array_equal(
                img, read_image(sample / 'images' / f'{folder.name}.png'))
