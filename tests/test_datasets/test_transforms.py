import numpy as np
import pytest
import torch

from nucseg.datasets.transforms import (GenerateNucleiTarget,
                                        HEDStainJitter, PackNucleiInputs,
                                        RandomFlipRot90, RandomInstanceCrop,
                                        nuclei_boundaries)


def _results(h=40, w=50, seed=0):
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    inst = np.zeros((h, w), np.int32)
    inst[5:15, 5:15] = 1
    inst[5:15, 15:25] = 2  # touches instance 1
    inst[25:35, 30:45] = 7
    return dict(img=img, gt_instance_map=inst, seg_fields=['gt_instance_map'],
                img_shape=(h, w), img_path='x.png')


def _consistent(res):
    """Image and instance map still describe the same pixels."""
    img, inst = res['img'], res['gt_instance_map']
    assert img.shape[:2] == inst.shape == tuple(res['img_shape'])


def test_random_crop_pads_small_images_and_keeps_pairs():
    np.random.seed(0)
    res = _results(40, 50)
    # Encode the position in the image so the crop can be checked exactly.
    yy, xx = np.mgrid[:40, :50]
    res['img'][..., 0] = yy
    res['img'][..., 1] = xx
    crop = RandomInstanceCrop(crop_size=(32, 64), pad_val=255)
    out = crop(dict(res, img=res['img'].copy()))
    _consistent(out)
    assert out['img'].shape == (32, 64, 3)
    # Width 50 < 64: padded region has pad value and label 0.
    assert (out['img'][:, 50:] == 255).all()
    assert (out['gt_instance_map'][:, 50:] == 0).all()
    y0 = out['img'][0, 0, 0]
    np.testing.assert_array_equal(out['gt_instance_map'][:, :50],
                                  res['gt_instance_map'][y0:y0 + 32])


def test_random_crop_fg_prob_finds_foreground():
    inst = np.zeros((200, 200), np.int32)
    inst[190:195, 190:195] = 1
    res = dict(img=np.zeros((200, 200, 3), np.uint8), gt_instance_map=inst,
               seg_fields=['gt_instance_map'])
    crop = RandomInstanceCrop(crop_size=32, fg_prob=1.0)
    np.random.seed(1)
    outs = [crop(dict(res))['gt_instance_map'] for _ in range(20)]
    assert all(o.shape == (32, 32) and o.any() for o in outs)
    # Uniform crops almost never hit the 5x5 nucleus.
    uniform = RandomInstanceCrop(crop_size=32, fg_prob=0.0)
    hits = sum(uniform(dict(res))['gt_instance_map'].any()
               for _ in range(20))
    assert hits <= 3
    with pytest.raises(ValueError, match='crop_size'):
        RandomInstanceCrop(crop_size=(0, 3))


@pytest.mark.parametrize('seed', range(6))
def test_flip_rot90_same_transform_for_all_fields(seed):
    np.random.seed(seed)
    res = _results(30, 46, seed)
    res['img'][..., 0] = (res['gt_instance_map'] * 20).astype(np.uint8)
    out = RandomFlipRot90(flip_prob=0.5, rot_prob=0.9)(res)
    _consistent(out)
    np.testing.assert_array_equal(out['img'][..., 0],
                                  out['gt_instance_map'] * 20)
    assert sorted(np.unique(out['gt_instance_map'])) == [0, 1, 2, 7]
    if out['rot90_k'] % 2:
        assert out['img'].shape[:2] == (46, 30)


def test_hed_jitter_changes_colour_not_geometry():
    np.random.seed(0)
    res = _results()
    before = res['img'].copy()
    out = HEDStainJitter(alpha=0.2, beta=0.05)(dict(res))
    assert out['img'].shape == before.shape and out['img'].dtype == np.uint8
    assert np.abs(out['img'].astype(int) - before).mean() > 1
    same = HEDStainJitter(alpha=0.0, beta=0.0)(dict(res, img=before.copy()))
    assert np.abs(same['img'].astype(int) - before).max() <= 1
    with pytest.raises(ValueError, match='RGB'):
        HEDStainJitter()(dict(img=np.zeros((4, 4), np.uint8)))


def test_generate_targets():
    res = _results()
    out = GenerateNucleiTarget(mode='contour')(dict(res))
    seg = out['gt_seg_map']
    assert seg.dtype == np.uint8 and set(np.unique(seg)) == {0, 1, 2}
    assert 'gt_seg_map' in out['seg_fields']
    # The touching line between instances 1 and 2 is boundary.
    assert (seg[6:14, 14] == 2).all() and (seg[6:14, 15] == 2).all()
    assert seg[10, 10] == 1 and seg[0, 0] == 0
    binary = GenerateNucleiTarget(mode='binary')(dict(res))['gt_seg_map']
    np.testing.assert_array_equal(binary, res['gt_instance_map'] > 0)
    wide = nuclei_boundaries(res['gt_instance_map'], width=2)
    assert wide.sum() > nuclei_boundaries(res['gt_instance_map']).sum()
    assert not wide[res['gt_instance_map'] == 0].any()
    with pytest.raises(ValueError, match='mode'):
        GenerateNucleiTarget(mode='distance')


def test_pack_carries_instances_and_domain():
    res = GenerateNucleiTarget()(_results())
    res.update(domain='he_tnbc', domain_id=2, is_primary=False, name='x')
    packed = PackNucleiInputs()(res)
    inputs, sample = packed['inputs'], packed['data_samples']
    assert inputs.shape == (3, 40, 50) and inputs.dtype == torch.uint8
    assert sample.gt_instance_map.data.shape == (1, 40, 50)
    assert sample.gt_instance_map.data.dtype == torch.int64
    assert sample.gt_sem_seg.data.max() == 2
    assert sample.metainfo['domain'] == 'he_tnbc'
    assert sample.metainfo['domain_id'] == 2
    assert sample.metainfo['is_primary'] is False
    as_dict = sample.to_dict()
    assert 'gt_instance_map' in as_dict


def test_mmseg_resize_keeps_instance_maps_in_nucseg_scope():
    """mmseg's (Random)Resize, built in the nucseg scope, resizes every
    seg field with nearest interpolation, so ids survive unchanged."""
    from nucseg.registry import TRANSFORMS
    from nucseg.utils import register_all_modules
    register_all_modules()
    np.random.seed(0)
    for cfg in (dict(type='Resize', scale=(100, 80), keep_ratio=True),
                dict(type='RandomResize', scale=(50, 40),
                     ratio_range=(0.5, 2.0), keep_ratio=True)):
        res = _results()
        res['gt_instance_map'][res['gt_instance_map'] == 7] = 70000
        out = TRANSFORMS.build(cfg)(res)
        _consistent(out)
        assert out['gt_instance_map'].dtype == np.int32
        assert sorted(np.unique(out['gt_instance_map'])) == [0, 1, 2, 70000]


def test_sam_test_pipeline_keeps_labels_at_original_size(
        synthetic_he, repo_root):
    """SAM test pipelines resize the image, then load the labels: the
    size check uses ``ori_shape`` and the labels stay unresized; a label
    of another size is still refused, naming both files."""
    from mmengine.config import Config
    from mmengine.dataset import Compose

    from nucseg.utils import LabelError, register_all_modules, write_label
    register_all_modules()
    cfg = Config.fromfile(
        repo_root / 'configs/_base_/datasets/sam_pipelines.py')
    steps = [dict(t) for t in cfg.sam_test_pipeline]
    steps[1]['scale'] = (128, 128)
    pipe = Compose(steps)
    img = f'{synthetic_he}/images/he_kumar_0000.png'
    lab = f'{synthetic_he}/labels/he_kumar_0000.png'
    out = pipe(dict(img_path=img, seg_map_path=lab))
    assert tuple(out['inputs'].shape) == (3, 128, 128)
    sample = out['data_samples']
    assert tuple(sample.gt_instance_map.shape) == (64, 64)
    assert tuple(sample.gt_sem_seg.shape) == (64, 64)
    assert tuple(sample.ori_shape) == (64, 64)
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        bad = f'{tmp}/bad.png'
        write_label(bad, np.ones((32, 64), np.int32))
        with pytest.raises(LabelError, match='bad.png'):
            pipe(dict(img_path=img, seg_map_path=bad))
