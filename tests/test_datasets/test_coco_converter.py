"""COCO instance JSON converter: polygons, RLE, bad input, real sample."""
import json

import numpy as np
import pytest

from nucseg.datasets.converters.coco_instances import (
    convert_coco_instances, decode_coco_segmentation)
from nucseg.datasets.converters.errors import (AnnotationError,
                                               IncompleteConversionError)
from nucseg.utils.io import read_label, write_image


def _rect(x0, y0, x1, y1):
    return [x0, y0, x1, y0, x1, y1, x0, y1]


def _write_case(root):
    from pycocotools import mask as mask_utils
    images = root / 'images'
    images.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in ('good.png', 'bad_poly.png'):
        write_image(images / name,
                    rng.integers(0, 255, (32, 40, 3), dtype=np.uint8))
    blob = np.zeros((32, 40), np.uint8)
    blob[20:26, 30:36] = 1
    compressed = mask_utils.encode(np.asfortranarray(blob))
    counts = []  # uncompressed RLE (column-major runs)
    flat = np.zeros((32, 40), np.uint8)
    flat[2:5, 30:34] = 1
    val, run = 0, 0
    for v in flat.flatten(order='F'):
        if v != val:
            counts.append(run)
            val, run = v, 0
        run += 1
    counts.append(run)
    anns = [
        dict(id=1, image_id=1, category_id=1, iscrowd=0,
             segmentation=[_rect(2, 2, 10, 10)]),
        dict(id=2, image_id=1, category_id=1, iscrowd=0,  # two parts
             segmentation=[_rect(14, 2, 18, 6), _rect(14, 10, 18, 14)]),
        dict(id=3, image_id=1, category_id=1, iscrowd=0,
             segmentation=dict(size=[32, 40],
                               counts=compressed['counts'].decode())),
        dict(id=4, image_id=1, category_id=1, iscrowd=0,
             segmentation=dict(size=[32, 40], counts=counts)),
        dict(id=5, image_id=1, category_id=1, iscrowd=1,
             segmentation=[_rect(0, 28, 5, 31)]),
        dict(id=6, image_id=2, category_id=1, iscrowd=0,
             segmentation=[[1, 1, 8, 8]]),  # 2 points
    ]
    data = dict(
        images=[dict(id=1, file_name='good.png', height=32, width=40),
                dict(id=2, file_name='bad_poly.png', height=32, width=40),
                dict(id=3, file_name='missing.png', height=32, width=40)],
        annotations=anns,
        categories=[dict(id=1, name='nuclei')])
    ann = root / 'ann.json'
    ann.write_text(json.dumps(data))
    return images, ann


def test_converts_good_images_and_names_every_failure(tmp_path):
    images, ann = _write_case(tmp_path)
    out = tmp_path / 'out'
    with pytest.raises(IncompleteConversionError) as info:
        convert_coco_instances(images, ann, out, split='train')
    summary = info.value.summary
    assert [r.name for r in summary.results] == ['good']
    failures = {f.name: f.error for f in summary.failures}
    assert set(failures) == {'bad_poly', 'missing'}
    assert 'annotation id=6' in failures['bad_poly']
    assert 'at least 3' in failures['bad_poly']
    assert 'image id=3' in failures['missing']
    assert (out / 'splits' / 'train.txt').read_text().split() == ['good']
    label = read_label(out / 'labels' / 'good.png')
    assert label.max() == 4  # crowd annotation skipped
    assert summary.results[0].report['crowd'] == 1
    # annotation 2 (two polygon parts) is one instance
    assert len(np.unique(label[2:6, 14:18])) == 1
    assert label[3, 15] == label[11, 15] != 0
    # compressed and uncompressed RLE decode to their masks exactly
    assert set(np.unique(label[20:26, 30:36])) == {3}
    assert (label == 3).sum() == 36
    assert (label == 4).sum() == 12 and set(np.unique(label[2:5, 30:34])) \
        == {4}


def test_command_line_exit_status(tmp_path, repo_root, capsys):
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'coco_cli', repo_root / 'tools/dataset_converters/coco_instances.py')
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    images, ann = _write_case(tmp_path)
    rc = cli.main([str(images), str(tmp_path / 'cli'), '--ann-file',
                   str(ann)])
    err = capsys.readouterr().err
    assert rc == 1
    assert 'bad_poly' in err and 'missing' in err
    assert (tmp_path / 'cli' / 'images' / 'good.png').is_file()


@pytest.mark.parametrize('seg,match', [
    ([[1, 2, 3]], 'odd number'),
    ([[1, 2, 3, 4, 5, float('nan')]], 'non-finite'),
    ([], 'empty'),
    (dict(size=[8, 8], counts=[10]), 'do not cover'),
    (dict(size=[9, 8], counts=[72]), 'differs'),
    ('abc', 'polygon list or an RLE'),
])
def test_malformed_segmentations(seg, match):
    with pytest.raises(AnnotationError, match=match):
        decode_coco_segmentation(dict(id=7, segmentation=seg), 8, 8,
                                 ctx='x.json')


def test_zero_area_polygon_keeps_its_outline():
    # pycococreator writes a nucleus cut by the border as a line
    mask, flat = decode_coco_segmentation(
        dict(id=1, segmentation=[[0.0, 2.5, 0.0, 6.5, 0.0, 2.5]]), 8, 8)
    assert flat and mask[:, 0].sum() >= 4 and mask[:, 1:].sum() == 0
    mask, flat = decode_coco_segmentation(
        dict(id=2, segmentation=[_rect(1, 1, 5, 5)]), 8, 8)
    assert not flat and mask.sum() > 0


def test_real_pdam_sample(shared_data, tmp_path):
    root = shared_data / 'pdam_fluo2tcga'
    if not root.is_dir():
        pytest.skip('pdam_fluo2tcga sample not present')
    ann = root / 'annotations' / 'fluo2tcga_instance_annotations.json'
    summary = convert_coco_instances(root / 'source_images', ann,
                                     tmp_path / 'src')
    assert len(summary.results) == 20 and not summary.failures
    data = json.loads(ann.read_text())
    assert summary.num_instances == len(data['annotations']) == 885
    assert summary.total('dropped') == 0
    # every annotation is an instance (16 zero-area border polygons keep
    # their outline) and pixel areas agree with the JSON's to 7% (the
    # polygons trace the outer pixel centres; pycocotools fills them with
    # pixel-corner coordinates, as mmdet reads them)
    areas = {}
    for r in summary.results:
        label = read_label(tmp_path / 'src' / 'labels' / f'{r.name}.png')
        areas[r.name] = np.bincount(label.ravel())[1:]
    ours = np.concatenate([areas[n] for n in sorted(areas)])
    theirs = np.concatenate([
        [a['area'] for a in data['annotations'] if a['image_id'] == img['id']]
        for img in sorted(data['images'],
                          key=lambda i: i['file_name'].split('.')[0])
    ])
    assert abs(ours.sum() / theirs.sum() - 1) < 0.1
