"""EM mitochondria converters (EPFL stacks, Lucchi++/Kasthuri++, generic)."""
import numpy as np
import pytest
import tifffile
from PIL import Image

from nucseg.datasets import NucleiDataset
from nucseg.datasets.converters import (AnnotationError, SourceLayoutError,
                                        binarize_mask, convert_casser_pp,
                                        convert_em_folders,
                                        convert_epfl_lucchi,
                                        convert_tiff_stack)
from nucseg.datasets.converters.em_mito import count_pages, pair_slices
from nucseg.utils.io import read_image, read_label


def _stack(n=3, h=24, w=32, seed=0):
    """Grey slices and 0/255 masks with two blobs (one touching a
    corner-only neighbour) per slice."""
    rng = np.random.default_rng(seed)
    imgs = rng.integers(0, 256, (n, h, w), dtype=np.uint8)
    masks = np.zeros((n, h, w), np.uint8)
    masks[:, 2:6, 2:6] = 255
    masks[:, 6:9, 6:9] = 200  # diagonal neighbour: 2 components at 4-conn.
    masks[:, 15:20, 20:28] = 128  # anti-aliased value > 127: foreground
    masks[:, 0, 31] = 127  # not foreground
    return imgs, masks


def _write(path, stack):
    """A multi-page TIFF, one page per slice (as EM stacks are stored)."""
    tifffile.imwrite(path, stack, photometric='minisblack')


@pytest.mark.parametrize('imagej', [False, True])
def test_generic_tiff_stack(tmp_path, imagej):
    imgs, masks = _stack()
    tifffile.imwrite(tmp_path / 'vol.tif', imgs, imagej=imagej,
                     photometric='minisblack')
    tifffile.imwrite(tmp_path / 'gt.tif', masks, imagej=imagej,
                     photometric='minisblack')
    assert count_pages(tmp_path / 'vol.tif') == 3
    out = tmp_path / 'out'
    summary = convert_tiff_stack(tmp_path / 'vol.tif', tmp_path / 'gt.tif',
                                 out, split='train')
    assert summary.splits['train'] == ['vol_0000', 'vol_0001', 'vol_0002']
    assert summary.num_instances == 9  # 3 components x 3 slices
    for k in range(3):
        img = read_image(out / 'images' / f'vol_{k:04d}.png')
        assert np.array_equal(img[..., 0], imgs[k])
        assert np.array_equal(img[..., 1], imgs[k])
        lab = read_label(out / 'labels' / f'vol_{k:04d}.png')
        assert np.array_equal(lab > 0, masks[k] > 127)
        assert lab.max() == 3
    ds = NucleiDataset(data_root=str(out), split='train', pipeline=[])
    assert len(ds) == 3
    eight = convert_tiff_stack(tmp_path / 'vol.tif', tmp_path / 'gt.tif',
                               tmp_path / 'out8', connectivity=8)
    assert eight.num_instances == 6


def test_stack_mismatch_and_missing(tmp_path):
    imgs, masks = _stack()
    _write(tmp_path / 'vol.tif', imgs)
    _write(tmp_path / 'gt.tif', masks[:2])
    with pytest.raises(SourceLayoutError, match='3 slices .* has 2'):
        convert_tiff_stack(tmp_path / 'vol.tif', tmp_path / 'gt.tif',
                           tmp_path / 'o')
    with pytest.raises(SourceLayoutError, match='not found'):
        convert_tiff_stack(tmp_path / 'nope.tif', tmp_path / 'gt.tif',
                           tmp_path / 'o')


def test_epfl_layout_and_random_split(tmp_path):
    src = tmp_path / 'epfl' / 'nested'
    src.mkdir(parents=True)
    imgs, masks = _stack(n=6)
    _write(src / 'training.tif', imgs)
    _write(src / 'training_groundtruth.tif', masks)
    _write(src / 'testing.tif', imgs[:2])
    _write(src / 'testing_groundtruth.tif', masks[:2])
    out = tmp_path / 'out'
    summary = convert_epfl_lucchi(tmp_path / 'epfl', out, random_test=4,
                                  seed=0)
    assert len(summary.splits['train']) == 6
    assert summary.splits['test'] == ['testing_0000', 'testing_0001']
    test, train = summary.splits['random_test'], summary.splits['random_train']
    assert len(test) == 4 and len(train) == 2
    assert sorted(test + train) == summary.splits['train']
    again = convert_epfl_lucchi(tmp_path / 'epfl', tmp_path / 'o2',
                                random_test=4, seed=0)
    assert again.splits['random_test'] == test
    assert (out / 'splits' / 'random_test.txt').read_text().split() == test
    (src / 'testing_groundtruth.tif').unlink()
    with pytest.raises(SourceLayoutError, match='ground-truth'):
        convert_epfl_lucchi(tmp_path / 'epfl', tmp_path / 'o3')
    with pytest.raises(SourceLayoutError, match='no EPFL stacks'):
        convert_epfl_lucchi(tmp_path / 'out' / 'splits', tmp_path / 'o4')


def _png(path, arr):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def test_kasthuri_pp_layout_rgba_masks(tmp_path):
    root = tmp_path / 'kasthuri_pp' / 'Kasthuri++'
    imgs, masks = _stack(n=2)
    for split in ('Train', 'Test'):
        for k in range(2):
            _png(root / f'{split}_In' / f'{k:04d}.png', imgs[k])
            rgba = np.zeros(masks[k].shape + (4, ), np.uint8)
            rgba[..., :3] = (masks[k] > 127)[..., None] * 255
            rgba[:3, :3, :3] = 2  # "outside the volume" marker
            rgba[..., 3] = 255
            _png(root / f'{split}_Out' / f'mask{k:04d}.png', rgba)
    out = tmp_path / 'out'
    summary = convert_casser_pp(tmp_path / 'kasthuri_pp', out,
                                dataset='Kasthuri++')
    assert summary.splits == {'train': ['train_0000', 'train_0001'],
                              'test': ['test_0000', 'test_0001']}
    lab = read_label(out / 'labels' / 'train_0001.png')
    want = masks[1] > 127
    want[:3, :3] = False
    assert np.array_equal(lab > 0, want)
    with pytest.raises(SourceLayoutError, match='Train_In'):
        convert_casser_pp(tmp_path / 'out', tmp_path / 'o2')


def test_pairing_rules(tmp_path):
    from pathlib import Path
    same = pair_slices([Path('a/x1.png')], [Path('b/x1.png')])
    assert same == [(Path('a/x1.png'), Path('b/x1.png'))]
    num = pair_slices([Path('a/im0002.png'), Path('a/im0010.png')],
                      [Path('b/mask_0010.tif'), Path('b/mask_0002.tif')])
    assert num[0][1].name == 'mask_0002.tif'
    with pytest.warns(UserWarning, match='sorted order'):
        pair_slices([Path('a/foo.png')], [Path('b/bar.png')])
    with pytest.raises(SourceLayoutError, match='cannot pair'):
        pair_slices([Path('a/foo.png')], [])


def test_binarize_mask_errors():
    rgb = np.zeros((2, 2, 3), np.uint8)
    rgb[0, 0] = (255, 0, 0)
    with pytest.raises(AnnotationError, match='differing colour'):
        binarize_mask(rgb, name='m.png')
    assert binarize_mask(np.array([[127, 128]], np.uint8)).tolist() == [
        [False, True]]
    # 0/1 masks (1-bit PNGs) mark foreground with 1
    assert binarize_mask(np.array([[0, 1]], np.uint8)).tolist() == [
        [False, True]]
    assert binarize_mask(np.array([[0, 1, 2]], np.uint8)).tolist() == [
        [False, False, False]]


def test_unlabelled_folder(tmp_path):
    imgs, _ = _stack(n=2)
    for k in range(2):
        _png(tmp_path / 'raw' / f'{k:02d}.png', imgs[k])
    summary = convert_em_folders(tmp_path / 'raw', None, tmp_path / 'out',
                                 split='unlabelled', prefix='vnc2')
    assert summary.splits['unlabelled'] == ['vnc2_00', 'vnc2_01']
    assert not (tmp_path / 'out' / 'labels').exists()
    ds = NucleiDataset(data_root=str(tmp_path / 'out'), split='unlabelled',
                       require_labels=False, pipeline=[])
    assert len(ds) == 2


def test_cli(tmp_path, repo_root, capsys):
    """The three front ends (in-process: each is a thin argparse layer)."""
    import importlib.util

    def cli(name):
        spec = importlib.util.spec_from_file_location(
            name, repo_root / 'tools' / 'dataset_converters' / f'{name}.py')
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    imgs, masks = _stack(n=2)
    _write(tmp_path / 'vol.tif', imgs)
    _write(tmp_path / 'gt.tif', masks)
    assert cli('em_stack').main([str(tmp_path / 'vol.tif'),
                                 str(tmp_path / 'gt.tif'),
                                 str(tmp_path / 'out'), '--split',
                                 'train']) == 0
    assert 'wrote 2 samples with 6 instances' in capsys.readouterr().out
    assert cli('em_stack').main([str(tmp_path / 'vol.tif'), '-',
                                 str(tmp_path / 'o')]) == 1
    assert 'needs an image folder' in capsys.readouterr().err
    for name in ('epfl_lucchi', 'lucchi_kasthuri_pp'):
        assert cli(name).main([str(tmp_path / 'missing'),
                               str(tmp_path / 'o')]) == 1
        assert 'not found' in capsys.readouterr().err


def test_vnc_sample(shared_data, tmp_path):
    """The real ssTEM sample: single-page TIFF slices + PNG masks."""
    root = shared_data / 'em_vnc_sample'
    if not root.is_dir():
        pytest.skip('em_vnc_sample not present')
    out = tmp_path / 'vnc'
    summary = convert_em_folders(root / 'labelled' / 'raw',
                                 root / 'labelled' / 'mitochondria', out,
                                 split='train')
    assert len(summary.splits['train']) == 8
    name = summary.splits['train'][0]
    img = read_image(out / 'images' / f'{name}.png')
    assert img.shape == (1024, 1024, 3)
    assert np.array_equal(img[..., 0], img[..., 2])  # grey
    raw = tifffile.imread(root / 'labelled' / 'raw' / f'{name}.tif')
    assert np.array_equal(img[..., 0], raw)
    lab = read_label(out / 'labels' / f'{name}.png')
    gt = np.array(Image.open(root / 'labelled' / 'mitochondria' /
                             f'{name}.png'))
    gt = gt if gt.ndim == 2 else gt[..., 0]
    assert np.array_equal(lab > 0, gt > 127)
    # some VNC masks are 1-bit PNGs: they must not come out empty
    assert all(r.num_instances > 0 for r in summary.results)
    assert lab.max() >= 5  # several mitochondria per section
    # the same slices as a multi-page stack (generic stack converter)
    names = summary.splits['train'][:3]
    stack = np.stack([tifffile.imread(root / 'labelled' / 'raw' /
                                      f'{n}.tif') for n in names])
    masks = np.stack([np.array(Image.open(
        root / 'labelled' / 'mitochondria' / f'{n}.png').convert('L'))
        for n in names])
    _write(tmp_path / 'stack.tif', stack)
    _write(tmp_path / 'masks.tif', masks)
    again = convert_tiff_stack(tmp_path / 'stack.tif',
                               tmp_path / 'masks.tif', tmp_path / 'vnc2')
    assert again.num_instances == sum(
        r.num_instances for r in summary.results if r.name in names)
    unl = convert_em_folders(root / 'unlabelled', None, tmp_path / 'vnc3',
                             split='unlabelled')
    assert len(unl.splits['unlabelled']) == 4
