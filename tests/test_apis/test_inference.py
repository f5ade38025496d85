import pytest
from mmengine.config import Config

from nucseg.apis import build_test_pipeline, list_images
from nucseg.utils import register_all_modules


def _cfg(with_loader=True):
    load = dict(type='LoadNucleiImageFromFile')
    resize = dict(type='Resize', scale=(64, 64), keep_ratio=False)
    labels = dict(type='LoadInstanceAnnotations')
    pack = dict(type='PackNucleiInputs')
    cfg = dict(test_pipeline=[load, labels, pack])
    if with_loader:
        cfg['test_dataloader'] = dict(
            dataset=dict(pipeline=[load, resize, labels, pack]))
    return Config(cfg)


def test_pipeline_follows_the_test_dataloader_without_labels():
    register_all_modules()
    names = [type(t).__name__ for t in build_test_pipeline(_cfg()).transforms]
    # The data loader's pipeline (what tools/test.py and --cfg-options
    # edit) wins over `test_pipeline`; label transforms are dropped.
    assert names == ['LoadNucleiImageFromFile', 'Resize', 'PackNucleiInputs']
    names = [type(t).__name__
             for t in build_test_pipeline(_cfg(False)).transforms]
    assert names == ['LoadNucleiImageFromFile', 'PackNucleiInputs']
    with pytest.raises(KeyError, match='test_pipeline'):
        build_test_pipeline(Config(dict()))


def test_list_images(tmp_path):
    (tmp_path / 'b.PNG').write_bytes(b'x')
    (tmp_path / 'a.tif').write_bytes(b'x')
    (tmp_path / 'notes.txt').write_text('x')
    assert [p.name for p in list_images(tmp_path)] == ['a.tif', 'b.PNG']
    assert list_images(tmp_path / 'a.tif') == [tmp_path / 'a.tif']
    with pytest.raises(FileNotFoundError, match='missing'):
        list_images(tmp_path / 'missing')
    empty = tmp_path / 'empty'
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match='no image'):
        list_images(empty)
