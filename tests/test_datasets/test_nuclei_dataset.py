import os
import shutil

import numpy as np
import pytest

from nucseg.datasets import NucleiDataset
from nucseg.utils import register_all_modules
from nucseg.utils.io import ImageReadError, LabelError, write_image

register_all_modules()

PIPELINE = [
    dict(type='LoadNucleiImageFromFile'),
    dict(type='LoadInstanceAnnotations'),
    dict(type='GenerateNucleiTarget'),
    dict(type='PackNucleiInputs'),
]


def test_reads_convention_and_splits(synthetic_he):
    train = NucleiDataset(synthetic_he, split='train', pipeline=PIPELINE)
    test = NucleiDataset(synthetic_he, split='test', pipeline=PIPELINE)
    every = NucleiDataset(synthetic_he, pipeline=PIPELINE)
    assert len(train) == 4 and len(test) == 2 and len(every) == 8

    def names(ds):
        return {ds.get_data_info(i)['name'] for i in range(len(ds))}

    assert not names(train) & names(test)
    assert names(train) | names(test) < names(every)
    item = train[0]
    sample = item['data_samples']
    assert item['inputs'].shape[0] == 3
    assert sample.gt_instance_map.data.max() > 0
    assert sample.metainfo['domain'] == 'he_kumar'
    assert sample.metainfo['is_primary'] is True


def _copy(src, tmp_path):
    dst = tmp_path / 'ds'
    shutil.copytree(src, dst)
    return dst


def test_bad_inputs_name_the_file(synthetic_he, tmp_path):
    root = _copy(synthetic_he, tmp_path)
    name = (root / 'splits' / 'train.txt').read_text().split()[0]
    # Missing label.
    os.remove(root / 'labels' / f'{name}.png')
    with pytest.raises(FileNotFoundError, match=name):
        NucleiDataset(str(root), split='train', pipeline=PIPELINE)
    ds = NucleiDataset(
        str(root), split='train', pipeline=PIPELINE[:1],
        require_labels=False)
    infos = [ds.get_data_info(i) for i in range(len(ds))]
    assert [d['seg_map_path'] is None for d in infos].count(True) == 1

    # Size mismatch between image and label.
    root2 = _copy(synthetic_he, tmp_path / 'b')
    write_image(root2 / 'images' / f'{name}.png',
                np.zeros((10, 10, 3), np.uint8))
    with pytest.raises(LabelError, match='size mismatch'):
        NucleiDataset(str(root2), split='train', pipeline=PIPELINE)
    # Unchecked at build time, the loading transform still catches it.
    ds = NucleiDataset(str(root2), split='train', pipeline=PIPELINE,
                       check_pairs=False)
    idx = [ds.get_data_info(i)['name'] for i in range(len(ds))].index(name)
    with pytest.raises(LabelError, match='size mismatch'):
        ds[idx]

    # Truncated image.
    root3 = _copy(synthetic_he, tmp_path / 'c')
    p = root3 / 'images' / f'{name}.png'
    p.write_bytes(p.read_bytes()[:100])
    ds = NucleiDataset(str(root3), split='train', pipeline=PIPELINE)
    with pytest.raises(ImageReadError, match=name):
        ds[idx]


def test_missing_folders_and_split(tmp_path, synthetic_he):
    with pytest.raises(FileNotFoundError, match='image folder'):
        NucleiDataset(str(tmp_path), pipeline=PIPELINE)
    with pytest.raises(FileNotFoundError, match='nosuch.txt'):
        NucleiDataset(synthetic_he, split='nosuch', pipeline=PIPELINE)


def test_bad_pairs_are_found_when_the_dataset_is_built(synthetic_he,
                                                       tmp_path):
    """A validation label that does not fit its image (or an unreadable
    file) stops the run when the data set is built, i.e. before training
    starts, naming both files -- not at the first validation."""
    root = _copy(synthetic_he, tmp_path)
    name = (root / 'splits' / 'val.txt').read_text().split()[0]
    write_image(root / 'images' / f'{name}.png',
                np.zeros((10, 12, 3), np.uint8))
    with pytest.raises(LabelError) as err:
        NucleiDataset(str(root), split='val', pipeline=PIPELINE,
                      test_mode=True)
    msg = str(err.value)
    assert f'images/{name}.png is 12x10' in msg
    assert f'labels/{name}.png is 64x64' in msg and "split 'val'" in msg
    # Other splits are unaffected; lazy data sets check at full_init.
    NucleiDataset(str(root), split='train', pipeline=PIPELINE)
    lazy = NucleiDataset(str(root), split='val', pipeline=PIPELINE,
                         lazy_init=True)
    with pytest.raises(LabelError, match='size mismatch'):
        lazy.full_init()
    NucleiDataset(str(root), split='val', pipeline=PIPELINE,
                  check_pairs=False)  # explicitly off

    (root / 'labels' / f'{name}.png').write_bytes(b'garbage')
    with pytest.raises(ImageReadError, match=f'labels/{name}.png'):
        NucleiDataset(str(root), split='val', pipeline=PIPELINE)
