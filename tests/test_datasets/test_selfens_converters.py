"""KIRC and TCIA Pan-Cancer converters, seeded 80/10/10 splits.

Each test builds a tiny source tree in the layout the data set is
distributed in and converts it through the Python API or the command line.
"""
import importlib.util
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from nucseg.datasets.converters import (IncompleteConversionError,
                                        MissingAnnotationError,
                                        SourceLayoutError, convert_kirc,
                                        convert_tcia_pancancer,
                                        read_cancer_type_table,
                                        seeded_splits)
from nucseg.utils.io import read_image, read_label

TOOLS = Path(__file__).resolve().parents[2] / 'tools' / 'dataset_converters'


def _rgb(h, w, seed):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3),
                                                dtype=np.uint8)


def _save(path, arr, mode=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr, mode).save(path)


def _two_blobs(h=24, w=24, value=255, dtype=np.uint8):
    mask = np.zeros((h, w), dtype)
    mask[2:8, 2:8] = value
    mask[12:20, 10:18] = value
    return mask


def _tool(name):
    spec = importlib.util.spec_from_file_location(name, TOOLS / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _split(root, name):
    return (root / 'splits' / f'{name}.txt').read_text().split()


# ------------------------------------------------------------------ splits
def test_seeded_splits_are_reproducible_80_10_10():
    names = [f'img{i:03d}' for i in range(50)]
    a = seeded_splits(names, (0.8, 0.1, 0.1), seed=0)
    assert [len(a[k]) for k in ('train', 'val', 'test')] == [40, 5, 5]
    assert sorted(sum(a.values(), [])) == sorted(names)  # a partition
    assert seeded_splits(list(reversed(names)), seed=0) == a  # order-free
    assert seeded_splits(names, seed=1) != a
    b = seeded_splits([f'x{i}' for i in range(97)])  # TCIA-STAD
    assert [len(b[k]) for k in ('train', 'val', 'test')] == [77, 10, 10]
    with pytest.raises(ValueError, match='summing to 1'):
        seeded_splits(names, (0.8, 0.1, 0.2))
    with pytest.raises(ValueError, match='no names'):
        seeded_splits([])


def test_make_splits_cli_on_a_converted_tree(tmp_path, capsys):
    root = tmp_path / 'tnbc'
    names = [f'{s:02d}_{k}' for s in range(1, 6) for k in range(1, 5)]
    (root / 'splits').mkdir(parents=True)
    (root / 'splits' / 'all.txt').write_text('\n'.join(names) + '\n')
    tool = _tool('make_splits')
    assert tool.main([str(root), '--seed', '3']) == 0
    first = {s: _split(root, s) for s in ('train', 'val', 'test')}
    assert [len(v) for v in first.values()] == [16, 2, 2]
    assert tool.main([str(root), '--seed', '3']) == 0
    assert {s: _split(root, s) for s in first} == first
    assert 'train 16, val 2, test 2' in capsys.readouterr().out
    assert tool.main([str(tmp_path / 'missing')]) == 1
    assert 'not a converted data set' in capsys.readouterr().err


# -------------------------------------------------------------------- KIRC
def _kirc_tree(src, bad=None):
    """CellSegUDA's layout: <split>_images/<id>_image.tiff + masks."""
    ids = {'train': ['k01', 'k02', 'k03', 'k04', 'k05', 'k06'],
           'validation': ['k07'], 'test': ['k08', 'k09', 'k10']}
    for split, names in ids.items():
        for i, name in enumerate(names):
            rgba = np.dstack([_rgb(24, 24, i), np.full((24, 24), 255,
                                                       np.uint8)])
            _save(src / f'{split}_images' / f'{name}_image.tiff', rgba,
                  'RGBA')
            mask_path = src / f'{split}_masks' / f'{name}_mask.png'
            if name == bad:
                mask_path.parent.mkdir(parents=True, exist_ok=True)
                mask_path.write_bytes(b'\x89PNG\r\n\x1a\n-truncated')
            else:
                _save(mask_path, _two_blobs())
    return sorted(sum(ids.values(), []))


def test_convert_kirc(tmp_path):
    src, out = tmp_path / 'KIRC', tmp_path / 'kirc'
    names = _kirc_tree(src)
    summary = convert_kirc(src, out, ratios=(0.8, 0.1, 0.1), seed=0)
    assert sorted(r.name for r in summary.results) == names
    assert _split(out, 'all') == names
    splits = {s: _split(out, s) for s in ('train', 'val', 'test')}
    assert [len(v) for v in splits.values()] == [8, 1, 1]
    assert splits == seeded_splits(names, (0.8, 0.1, 0.1), 0)
    img = read_image(out / 'images' / 'k01.png')
    assert img.shape == (24, 24, 3)  # alpha dropped
    np.testing.assert_array_equal(
        img, read_image(src / 'train_images' / 'k01_image.tiff'))
    lab = read_label(out / 'labels' / 'k01.png')
    assert lab.max() == 2 and lab[4, 4] == 1 and lab[15, 15] == 2
    # command line without the seeded split
    assert _tool('kirc').main([str(src), str(tmp_path / 'cli'),
                               '--no-split']) == 0
    assert _split(tmp_path / 'cli', 'all') == names
    assert not (tmp_path / 'cli' / 'splits' / 'train.txt').exists()


def test_kirc_instance_masks_and_layout_errors(tmp_path):
    src = tmp_path / 'flat'
    _save(src / 'images' / 'a.png', _rgb(24, 24, 0))
    inst = np.zeros((24, 24), np.uint8)
    inst[2:8, 2:8] = 1
    inst[12:20, 10:14] = 7  # touching nuclei with their own ids
    inst[12:20, 14:18] = 9
    _save(src / 'masks' / 'a.png', inst)
    convert_kirc(src, tmp_path / 'out', ratios=None)
    lab = read_label(tmp_path / 'out' / 'labels' / 'a.png')
    assert lab.max() == 3  # ids kept apart (not merged by components)
    assert not (tmp_path / 'out' / 'splits' / 'train.txt').exists()
    with pytest.raises(SourceLayoutError, match='no images/'):
        convert_kirc(tmp_path / 'out' / 'labels', tmp_path / 'x')
    (src / 'images' / 'b.png').write_bytes(
        (src / 'images' / 'a.png').read_bytes())
    with pytest.raises(MissingAnnotationError, match='b_mask.png'):
        convert_kirc(src, tmp_path / 'y')


def test_kirc_cli_one_bad_mask_converts_the_others(tmp_path, capsys):
    src, out = tmp_path / 'KIRC', tmp_path / 'kirc'
    names = _kirc_tree(src, bad='k08')
    rc = _tool('kirc').main([str(src), str(out), '--seed', '0'])
    captured = capsys.readouterr()
    assert rc == 1
    assert 'k08' in captured.err and 'k08_mask.png' in captured.err
    good = [n for n in names if n != 'k08']
    assert _split(out, 'all') == good
    splits = {s: _split(out, s) for s in ('train', 'val', 'test')}
    assert sorted(sum(splits.values(), [])) == good
    assert splits == seeded_splits(good, (0.8, 0.1, 0.1), 0)
    assert not (out / 'images' / 'k08.png').exists()
    with pytest.raises(IncompleteConversionError) as err:
        convert_kirc(src, tmp_path / 'again')
    assert [f.name for f in err.value.summary.failures] == ['k08']
    assert 'train' in err.value.summary.splits


# -------------------------------------------------------------------- TCIA
CROSSWALK = (
    'Pan-Cancer-Nuclei-Seg: 1365 patches to TCGA IDs\n'
    'Free text before the table.\n\n'
    'Patch-ID,TCGA-ID,CancerType\n'
    '1,TCGA-AA-0001,stad\n'
    '2,TCGA-AA-0002,blca\n'
    '3,TCGA-AA-0003,STAD\n'
    '4,TCGA-AA-0004,stad\n'
    '5,TCGA-AA-0005,luad\n')


def _tcia_tree(src, with_table=True):
    for pid in range(1, 6):
        folder = src / 'manual_segmentation_data' / f'part{pid % 2}'
        _save(folder / f'{pid}_crop.png',
              np.dstack([_rgb(24, 24, pid),
                         np.full((24, 24), 255, np.uint8)]), 'RGBA')
        labels = np.zeros((24, 24), np.uint16)
        labels[2:8, 2:8] = 40
        labels[10:20, 10:20] = 9
        labels[10:20, 15:20] = 300  # touching, own id
        folder.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / f'{pid}_labeled_mask_corrected.png'),
                    labels)
        # per-annotator maps of the release: ignored
        cv2.imwrite(str(folder / f'{pid}_labeled_mask_common0.png'),
                    labels)
    if with_table:
        (src / 'Pan-Cancer-Nuclei-Seg_1365patches_to_TCGA-ID_readme.txt'
         ).write_text(CROSSWALK)


def test_read_cancer_type_table(tmp_path):
    path = tmp_path / 'readme.txt'
    path.write_text(CROSSWALK)
    assert read_cancer_type_table(path) == {
        '1': 'stad', '2': 'blca', '3': 'stad', '4': 'stad', '5': 'luad'}
    csv_path = tmp_path / 'table.csv'
    csv_path.write_text(',CancerType\n7,paad\n8,gbm\n')
    assert read_cancer_type_table(csv_path) == {'7': 'paad', '8': 'gbm'}
    (tmp_path / 'bad.txt').write_text('Patch-ID,Type\n1,stad\n')
    with pytest.raises(SourceLayoutError, match='CancerType'):
        read_cancer_type_table(tmp_path / 'bad.txt')


def test_convert_tcia_stad_subset(tmp_path):
    src, out = tmp_path / 'TCIA', tmp_path / 'tcia_stad'
    _tcia_tree(src)
    summary = convert_tcia_pancancer(src, out, cancer_types=['stad'],
                                     ratios=(0.8, 0.1, 0.1), seed=0)
    names = ['stad_1', 'stad_3', 'stad_4']
    assert sorted(r.name for r in summary.results) == names
    assert _split(out, 'all') == names
    splits = {s: _split(out, s) for s in ('train', 'val', 'test')}
    assert [len(v) for v in splits.values()] == [1, 1, 1]
    lab = read_label(out / 'labels' / 'stad_3.png')
    assert sorted(np.unique(lab)) == [0, 1, 2, 3]  # renumbered 1..N
    assert lab[4, 4] != lab[12, 12] != lab[12, 17]
    assert read_image(out / 'images' / 'stad_3.png').shape == (24, 24, 3)
    # every type without a filter
    every = convert_tcia_pancancer(src, tmp_path / 'all', ratios=None)
    assert sorted(r.name for r in every.results) == [
        'blca_2', 'luad_5', 'stad_1', 'stad_3', 'stad_4']


def test_tcia_types_from_folders_and_errors(tmp_path, capsys):
    src = tmp_path / 'TCIA'
    _tcia_tree(src, with_table=False)
    with pytest.raises(SourceLayoutError, match='type of 5 patch'):
        convert_tcia_pancancer(src, tmp_path / 'x', cancer_types=['stad'])
    # folders named after the type work without the table
    typed = tmp_path / 'typed'
    for pid, ctype in ((1, 'stad'), (2, 'blca')):
        for suffix in ('crop', 'labeled_mask_corrected'):
            name = f'{pid}_{suffix}.png'
            old = next(src.rglob(name))
            (typed / ctype).mkdir(parents=True, exist_ok=True)
            (typed / ctype / name).write_bytes(old.read_bytes())
    summary = convert_tcia_pancancer(typed, tmp_path / 'y',
                                     cancer_types=['stad'], ratios=None)
    assert [r.name for r in summary.results] == ['stad_1']
    with pytest.raises(SourceLayoutError, match='unknown cancer type'):
        convert_tcia_pancancer(typed, tmp_path / 'z', cancer_types=['xyz'])
    with pytest.raises(SourceLayoutError, match='no patch of cancer'):
        convert_tcia_pancancer(typed, tmp_path / 'z', cancer_types=['uvm'])
    # CLI: a patch without its corrected mask is an error unless skipped
    (typed / 'stad' / '1_labeled_mask_corrected.png').unlink()
    tool = _tool('tcia_pancancer')
    assert tool.main([str(typed), str(tmp_path / 'c'),
                      '--cancer-types', 'blca']) == 0
    assert tool.main([str(typed), str(tmp_path / 'd')]) == 1
    assert '1_labeled_mask_corrected.png' in capsys.readouterr().err


def test_tcia_cli_stad_with_table(tmp_path, capsys):
    src, out = tmp_path / 'TCIA', tmp_path / 'stad'
    _tcia_tree(src)
    (src / 'manual_segmentation_data' / 'part1' / '3_crop.png').write_bytes(
        b'not an image')
    rc = _tool('tcia_pancancer').main(
        [str(src), str(out), '--cancer-types', 'stad', '--ratios', '0.5',
         '0.5', '0'])
    captured = capsys.readouterr()
    assert rc == 1 and '3_crop.png' in captured.err
    assert _split(out, 'all') == ['stad_1', 'stad_4']
    assert sorted(_split(out, 'train') + _split(out, 'val')) == [
        'stad_1', 'stad_4']
    assert _split(out, 'test') == []
