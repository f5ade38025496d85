"""Tests of the registered mmengine metrics InstanceMetric / SemanticMetric."""
import csv
import math

import numpy as np
import pytest

torch = pytest.importorskip('torch')
pytest.importorskip('mmengine')
pytest.importorskip('mmseg')

from nucseg.evaluation import InstanceMetric, SemanticMetric  # noqa: E402
from nucseg.evaluation.functional import (instance_metrics,  # noqa: E402
                                          semantic_metrics)
from nucseg.evaluation.functional.reference import (  # noqa: E402
    perturb_instance_map, random_instance_map)
from nucseg.registry import METRICS  # noqa: E402


def _pairs(num=3, size=64, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(num):
        gt = random_instance_map((size, size), 12, rng)
        out.append((gt, perturb_instance_map(gt, rng)))
    return out


def _sample(gt, pred, name=None, pred_key='pred_instance_map'):
    """A data sample as mmengine passes it: SegDataSample.to_dict()."""
    sample = {
        'gt_instance_map': {
            'data': torch.from_numpy(gt.astype(np.int64))[None]
        },
        pred_key: {
            'data': torch.from_numpy(pred.astype(np.int64))[None]
        },
    }
    if name is not None:
        sample['img_path'] = f'/data/images/{name}.png'
    return sample


def _run(metric, samples, batch=2):
    for i in range(0, len(samples), batch):
        metric.process({}, samples[i:i + batch])
    return metric.evaluate(len(samples))


def test_registered():
    metric = METRICS.build(dict(type='InstanceMetric', metrics=('aji', )))
    assert isinstance(metric, InstanceMetric)
    metric = METRICS.build(dict(type='SemanticMetric', metrics='dice'))
    assert isinstance(metric, SemanticMetric)


def test_instance_metric_averages_per_image():
    pairs = _pairs()
    samples = [_sample(g, p, f'img{i}') for i, (g, p) in enumerate(pairs)]
    results = _run(InstanceMetric(), samples)
    per_image = [instance_metrics(g, p) for g, p in pairs]
    assert set(results) == {
        'aji', 'aji_plus', 'dq', 'sq', 'pq', 'dice', 'obj_f1'
    }
    for key, value in results.items():
        want = np.mean([r[key] for r in per_image])
        assert value == pytest.approx(want, abs=1e-12), key


def test_instance_metric_options_and_prefix():
    pairs = _pairs(2)
    samples = [_sample(g, p) for g, p in pairs]
    metric = InstanceMetric(
        metrics=('pq', 'aji'), match_iou=0.3, prefix='nuclei')
    results = _run(metric, samples)
    assert set(results) == {'nuclei/pq', 'nuclei/aji'}
    want = np.mean([instance_metrics(g, p, 0.3)['pq'] for g, p in pairs])
    assert results['nuclei/pq'] == pytest.approx(want, abs=1e-12)


def test_instance_metric_csv(tmp_path):
    pairs = _pairs()
    samples = [_sample(g, p, f'img{i}') for i, (g, p) in enumerate(pairs)]
    out = tmp_path / 'sub' / 'per_image.csv'
    _run(InstanceMetric(metrics=('aji', 'pq'), output_file=str(out)),
         samples)
    with open(out) as f:
        rows = list(csv.DictReader(f))
    assert [r['img_name'] for r in rows] == ['img0.png', 'img1.png',
                                             'img2.png']
    assert list(rows[0]) == ['img_name', 'aji', 'pq', 'tp', 'fp', 'fn']
    for row, (gt, pred) in zip(rows, pairs):
        want = instance_metrics(gt, pred)
        assert float(row['aji']) == pytest.approx(want['aji'], abs=1e-12)
        assert int(row['tp']) == want['tp']


def test_with_seg_data_samples_through_evaluator():
    from mmengine.evaluator import Evaluator
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    pairs = _pairs(2)
    samples = []
    for i, (gt, pred) in enumerate(pairs):
        s = SegDataSample(metainfo=dict(img_path=f'x/img{i}.png'))
        s.gt_instance_map = PixelData(data=torch.from_numpy(gt)[None])
        s.pred_instance_map = PixelData(data=torch.from_numpy(pred)[None])
        samples.append(s)
    evaluator = Evaluator([InstanceMetric(metrics='aji'), SemanticMetric()])
    evaluator.process(samples, {})
    results = evaluator.evaluate(len(samples))
    want = np.mean([instance_metrics(g, p)['aji'] for g, p in pairs])
    assert results['aji'] == pytest.approx(want, abs=1e-12)
    assert 0 < results['dice'] <= 1


def test_missing_keys_raise():
    gt, pred = _pairs(1)[0]
    sample = _sample(gt, pred, pred_key='pred_sem_seg')
    with pytest.raises(KeyError, match='pred_instance_map'):
        InstanceMetric().process({}, [sample])
    del sample['gt_instance_map']
    with pytest.raises(KeyError, match='gt_instance_map'):
        SemanticMetric().process({}, [sample])


@pytest.mark.parametrize('metrics', [(), ('aji', 'nope'), ('pq', 'pq')])
def test_bad_metric_names(metrics):
    with pytest.raises(ValueError):
        InstanceMetric(metrics=metrics)


def test_bad_shape_raises():
    gt, pred = _pairs(1)[0]
    sample = _sample(gt, pred)
    sample['pred_instance_map']['data'] = torch.zeros(2, 64, 64)
    with pytest.raises(ValueError, match='pred_instance_map'):
        InstanceMetric().process({}, [sample])


def test_semantic_metric_matches_functional():
    pairs = _pairs()
    samples = [_sample(g, p) for g, p in pairs]
    names = ('dice', 'iou', 'miou', 'precision', 'recall', 'f1',
             'hausdorff', 'hd95')
    results = _run(SemanticMetric(metrics=names), samples)
    per_image = [semantic_metrics(g, p) for g, p in pairs]
    for key in names:
        want = np.mean([r[key] for r in per_image])
        assert results[key] == pytest.approx(want, abs=1e-12), key


def test_semantic_metric_class_map_fallback():
    # A 3-class (background / inside / boundary) prediction: boundary
    # pixels (class 2) count as nucleus.
    gt, pred = _pairs(1)[0]
    three_class = np.where(pred > 0, 2, 0)
    three_class[1::2] = np.where(pred[1::2] > 0, 1, 0)
    by_instance = _run(SemanticMetric(), [_sample(gt, pred)])
    by_class = _run(SemanticMetric(),
                    [_sample(gt, three_class, pred_key='pred_sem_seg')])
    for key, value in by_instance.items():
        assert by_class[key] == pytest.approx(value, abs=1e-12), key


def test_semantic_metric_scores_the_raw_prediction():
    """AMA-SAM Sec. 3.6: DSC / mIoU / F1 / HD of the network's pixel
    prediction (``pred_sem_seg``), not of the watershed output whose holes
    are filled and small objects removed."""
    gt, pred = _pairs(1)[0]
    raw = (pred > 0).astype(np.int64)
    raw[::7, ::5] = 0  # holes the post-processor would fill
    raw[:3, :3] = 1  # a speck it would remove
    sample = _sample(gt, pred)
    sample['pred_sem_seg'] = {'data': torch.from_numpy(raw)[None]}
    names = ('dice', 'miou', 'f1', 'hausdorff')
    default = _run(SemanticMetric(metrics=names), [sample])
    want = semantic_metrics(gt > 0, raw > 0)
    for key in names:
        assert default[key] == pytest.approx(want[key], abs=1e-12), key
    post = _run(SemanticMetric(metrics=names, pred_source='instance'),
                [sample])
    assert post['dice'] == pytest.approx(
        semantic_metrics(gt > 0, pred > 0)['dice'], abs=1e-12)
    assert post['dice'] != pytest.approx(default['dice'])
    with pytest.raises(ValueError, match='pred_source'):
        SemanticMetric(pred_source='logits')


def test_semantic_metric_skips_infinite_hausdorff():
    gt, pred = _pairs(1)[0]
    empty = np.zeros_like(gt)
    samples = [_sample(gt, pred), _sample(gt, empty)]
    results = _run(SemanticMetric(metrics=('hausdorff', 'dice')), samples)
    want = semantic_metrics(gt, pred)
    assert results['hausdorff'] == pytest.approx(want['hausdorff'])
    assert results['dice'] == pytest.approx(want['dice'] / 2)
    only_empty = _run(SemanticMetric(metrics='hausdorff'),
                      [_sample(gt, empty)])
    assert math.isinf(only_empty['hausdorff'])
