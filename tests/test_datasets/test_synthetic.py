"""Tests of the synthetic nuclei generator and its command-line tool."""
import dataclasses
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from scipy import ndimage

from nucseg.datasets.synthetic import (DOMAINS, DomainSpec, generate_sample,
                                       get_domain, list_domains, make_dataset,
                                       sample_seed, split_counts)
from nucseg.utils.io import read_image, read_label

REPO_ROOT = Path(__file__).resolve().parents[2]
CROSS = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]])


def _grey(img: np.ndarray) -> np.ndarray:
    return img.astype(np.float64).mean(axis=2)


def _touching_pairs(inst: np.ndarray) -> set:
    """Pairs of different instance ids that share a 4-neighbour edge."""
    pairs = set()
    for a, b in ((inst[1:, :], inst[:-1, :]), (inst[:, 1:], inst[:, :-1])):
        m = (a != b) & (a > 0) & (b > 0)
        lo = np.minimum(a[m], b[m])
        hi = np.maximum(a[m], b[m])
        pairs.update(zip(lo.tolist(), hi.tolist()))
    return pairs


def _stats(domain: str, n: int = 4, size: int = 256) -> dict:
    """Mean colour, instance area / count and grey contrast over tiles."""
    imgs, insts = zip(*(generate_sample(domain, size, s) for s in range(n)))
    areas = np.concatenate(
        [np.bincount(x.ravel())[1:] for x in insts if x.max()])
    fg = np.concatenate([g[x > 0] for g, x in zip(map(_grey, imgs), insts)])
    bg = np.concatenate([g[x == 0] for g, x in zip(map(_grey, imgs), insts)])
    sharp = np.mean([
        cv2.Laplacian(_grey(i).astype(np.float32), cv2.CV_32F).var()
        for i in imgs
    ])
    return dict(
        colour=np.mean([i.reshape(-1, 3).mean(0) for i in imgs], axis=0),
        area=areas.mean(),
        count=np.mean([x.max() for x in insts]),
        fg=fg.mean(),
        bg=bg.mean(),
        bg_median=np.median(bg),
        sharp=sharp)


def test_domain_registry():
    names = list_domains()
    for required in ('he_kumar', 'he_tnbc', 'he_cryo', 'he_cpm', 'fluo', 'em'):
        assert required in names
    assert names == list(DOMAINS)
    spec = get_domain('he_kumar')
    assert isinstance(spec, DomainSpec) and spec.name == 'he_kumar'
    assert {DOMAINS[n].modality for n in names} == {'he', 'fluo', 'em'}
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.blur = 3.0
    # the parameters are JSON-serialisable
    json.dumps(spec.to_dict())


def test_unknown_domain_is_a_clear_error():
    with pytest.raises(KeyError, match='valid domains: he_kumar'):
        get_domain('he_kumr')
    with pytest.raises(KeyError, match="'nope'"):
        generate_sample('nope', 32, 0)
    with pytest.raises(TypeError, match='DomainSpec'):
        generate_sample(3, 32, 0)


def test_invalid_arguments():
    with pytest.raises(ValueError, match='size'):
        generate_sample('fluo', 8, 0)
    with pytest.raises(ValueError, match='size'):
        generate_sample('fluo', (32, 32, 3), 0)
    with pytest.raises(ValueError, match='radius'):
        dataclasses.replace(get_domain('fluo'), radius=(5.0, 2.0))
    with pytest.raises(ValueError, match='modality'):
        DomainSpec(name='x', modality='ihc')


@pytest.mark.parametrize('domain', list(DOMAINS))
def test_deterministic_by_seed(domain):
    img1, inst1 = generate_sample(domain, (40, 56), 123)
    img2, inst2 = generate_sample(domain, (40, 56), 123)
    assert np.array_equal(img1, img2) and np.array_equal(inst1, inst2)
    img3, _ = generate_sample(domain, (40, 56), 124)
    assert not np.array_equal(img1, img3)


@pytest.mark.parametrize('domain', list(DOMAINS))
@pytest.mark.parametrize('size', [96, (64, 112), (131, 47)])
def test_shapes_dtypes_and_label_rules(domain, size):
    img, inst = generate_sample(domain, size, 7)
    h, w = (size, size) if isinstance(size, int) else size
    assert img.shape == (h, w, 3) and img.dtype == np.uint8
    assert inst.shape == (h, w) and inst.dtype == np.int32
    n = int(inst.max())
    # ids are contiguous 1..N
    assert np.array_equal(np.unique(inst), np.arange(n + 1))
    areas = np.bincount(inst.ravel())[1:]
    assert areas.min(initial=10**9) >= get_domain(domain).min_area
    # every instance is a single 4-connected component
    for k, sl in enumerate(ndimage.find_objects(inst), start=1):
        _, ncomp = ndimage.label(inst[sl] == k, structure=CROSS)
        assert ncomp == 1, f'instance {k} of {domain} has {ncomp} parts'


def test_custom_spec_and_tiles_have_instances():
    spec = dataclasses.replace(get_domain('he_kumar'), name='custom', blur=2.5)
    img, inst = generate_sample(spec, 128, 0)
    assert inst.max() > 10
    img_ref, inst_ref = generate_sample('he_kumar', 128, 0)
    assert np.array_equal(inst, inst_ref)  # only the blur differs
    assert not np.array_equal(img, img_ref)


def test_domains_really_differ():
    kumar, tnbc = _stats('he_kumar'), _stats('he_tnbc')
    cpm, cryo = _stats('he_cpm'), _stats('he_cryo')
    # TNBC-like: larger, sparser nuclei and a paler image
    assert tnbc['area'] > 1.5 * kumar['area']
    assert kumar['count'] > 2 * tnbc['count']
    assert _grey(tnbc['colour'][None, None])[0, 0] > \
        _grey(kumar['colour'][None, None])[0, 0] + 15
    # CPM-like: smaller, denser, darker
    assert cpm['area'] < 0.75 * kumar['area']
    assert cpm['count'] > 1.3 * kumar['count']
    assert cpm['colour'].mean() < kumar['colour'].mean() - 10
    # frozen sections are blurrier than the standard domain
    assert cryo['sharp'] < 0.5 * kumar['sharp']
    # mean colours differ between every pair of H&E domains
    cols = [d['colour'] for d in (kumar, tnbc, cpm, cryo)]
    for i in range(len(cols)):
        for j in range(i + 1, len(cols)):
            assert np.abs(cols[i] - cols[j]).max() > 5


@pytest.mark.parametrize('domain',
                         ['he_kumar', 'he_tnbc', 'he_cryo', 'he_cpm'])
def test_he_nuclei_darker_than_surroundings(domain):
    st = _stats(domain, n=2)
    assert st['fg'] < st['bg'] - 25
    r, g, b = st['colour']
    assert r > g and b > g  # pink / purple, not grey or green


def test_fluorescence_and_em_appearance():
    fluo = _stats('fluo', n=2)
    assert fluo['bg_median'] < 25  # dark background
    assert fluo['fg'] > fluo['bg'] + 40  # bright nuclei
    img, _ = generate_sample('fluo', 64, 0)
    assert np.array_equal(img[..., 0], img[..., 1])  # grey in 3 channels
    assert np.array_equal(img[..., 0], img[..., 2])
    dapi, _ = generate_sample('fluo_dapi', 64, 0)
    assert dapi[..., 2].mean() > 2 * dapi[..., 0].mean()  # blue
    em = _stats('em', n=2)
    assert em['fg'] < em['bg'] - 30  # mitochondria are dark
    img, _ = generate_sample('em', 64, 0)
    assert np.array_equal(img[..., 0], img[..., 2])


@pytest.mark.parametrize('domain', ['he_kumar', 'he_cpm', 'fluo_dapi'])
def test_touching_and_overlapping_instances_present(domain):
    _, inst = generate_sample(domain, 256, 3)
    assert len(_touching_pairs(inst)) >= 5


def test_occlusion_keeps_top_instance_only():
    # with heavy overlap allowed, later instances occlude earlier ones but
    # every kept id is still one component of >= min_area pixels
    spec = dataclasses.replace(
        get_domain('he_kumar'),
        name='dense',
        coverage=0.9,
        max_overlap=0.6,
        cluster_prob=0.9,
        cluster_gap=(0.3, 0.8),
        min_area=20)
    _, inst = generate_sample(spec, 128, 1)
    areas = np.bincount(inst.ravel())[1:]
    assert inst.max() > 20 and areas.min() >= 20
    assert len(_touching_pairs(inst)) > inst.max() // 2


def test_split_counts():
    assert split_counts(10, (0.7, 0.15, 0.15)) == [7, 2, 1] or \
        split_counts(10, (0.7, 0.15, 0.15)) == [7, 1, 2]
    assert sum(split_counts(61, (0.7, 0.15, 0.15))) == 61
    assert split_counts(3, (0.7, 0.15, 0.15)) == [1, 1, 1]
    assert split_counts(4, (1.0, 0.0, 0.0)) == [4, 0, 0]
    assert split_counts(1, (0.7, 0.15, 0.15)) == [1, 0, 0]
    with pytest.raises(ValueError, match='summing to 1'):
        split_counts(10, (0.5, 0.2, 0.2))
    with pytest.raises(ValueError, match='ratios'):
        split_counts(10, (0.5, 0.5))


def test_sample_seed_independent_of_dataset_size(tmp_path):
    assert sample_seed(0, 1, 'fluo') != sample_seed(0, 2, 'fluo')
    assert sample_seed(0, 1, 'fluo') != sample_seed(0, 1, 'em')
    assert sample_seed(5, 1, 'fluo') == sample_seed(5, 1, 'fluo')
    make_dataset(tmp_path / 'a', 'he_cpm', num=2, size=40, seed=9)
    make_dataset(tmp_path / 'b', 'he_cpm', num=4, size=40, seed=9)
    for i in range(2):
        for sub in ('images', 'labels'):
            fa = tmp_path / 'a' / sub / f'he_cpm_{i:04d}.png'
            fb = tmp_path / 'b' / sub / f'he_cpm_{i:04d}.png'
            assert fa.read_bytes() == fb.read_bytes()


def test_make_dataset_writes_the_convention(tmp_path):
    meta = make_dataset(
        tmp_path,
        'he_tnbc',
        num=7,
        size=(48, 64),
        seed=3,
        splits=(0.6, 0.2, 0.2),
        prefix='tn')
    names = [f'tn_{i:04d}' for i in range(7)]
    split_names = {}
    for split in ('train', 'val', 'test'):
        text = (tmp_path / 'splits' / f'{split}.txt').read_text()
        split_names[split] = text.split()
    listed = sum(split_names.values(), [])
    assert sorted(listed) == names and len(set(listed)) == 7
    assert [len(v) for v in split_names.values()] == [4, 2, 1] or \
        [len(v) for v in split_names.values()] == [5, 1, 1]
    spec = get_domain('he_tnbc')
    for i, name in enumerate(names):
        img = read_image(tmp_path / 'images' / f'{name}.png')
        lab = read_label(tmp_path / 'labels' / f'{name}.png')
        ref_img, ref_lab = generate_sample(spec, (48, 64),
                                           sample_seed(3, i, 'he_tnbc'))
        assert np.array_equal(img, ref_img)
        assert np.array_equal(lab, ref_lab)
    on_disk = json.loads((tmp_path / 'meta.json').read_text())
    assert on_disk == json.loads(json.dumps(meta))
    assert on_disk['domain'] == 'he_tnbc' and on_disk['num'] == 7
    assert on_disk['size'] == [48, 64] and on_disk['seed'] == 3
    assert on_disk['domain_params']['stain_h'] == list(spec.stain_h)
    assert [s['name'] for s in on_disk['samples']] == names
    with pytest.raises(ValueError, match='num'):
        make_dataset(tmp_path, 'he_tnbc', num=0, size=32, seed=0)


def _run_tool(*args):
    return subprocess.run(
        [sys.executable, 'tools/misc/make_synthetic.py', *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120)


def test_cli_writes_a_tiny_dataset(tmp_path):
    out = tmp_path / 'synth'
    proc = _run_tool('--out', str(out), '--domain', 'fluo', '--num', '3',
                     '--size', '32', '48', '--seed', '1')
    assert proc.returncode == 0, proc.stderr
    assert 'wrote 3 fluo images' in proc.stdout
    names = sorted(p.stem for p in (out / 'images').glob('*.png'))
    assert names == ['fluo_0000', 'fluo_0001', 'fluo_0002']
    assert read_label(out / 'labels' / 'fluo_0001.png').shape == (32, 48)
    splits = [(out / 'splits' / f'{s}.txt').read_text().split()
              for s in ('train', 'val', 'test')]
    assert sorted(sum(splits, [])) == names
    meta = json.loads((out / 'meta.json').read_text())
    assert meta['split_ratios'] == [0.7, 0.15, 0.15]


def _load_tool():
    """Import tools/misc/make_synthetic.py in-process (no subprocess)."""
    path = REPO_ROOT / 'tools' / 'misc' / 'make_synthetic.py'
    spec = importlib.util.spec_from_file_location('make_synthetic', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_list_domains_and_errors(tmp_path, capsys):
    tool = _load_tool()
    assert tool.main(['--list-domains']) == 0
    out = capsys.readouterr().out
    for name in DOMAINS:
        assert name in out
    with pytest.raises(SystemExit) as exc:
        tool.main(['--out', str(tmp_path), '--domain', 'he_nope'])
    assert exc.value.code != 0
    err = capsys.readouterr().err
    assert 'valid domains' in err and 'he_kumar' in err
    with pytest.raises(SystemExit):
        tool.main(['--domain', 'fluo'])  # --out missing
    assert '--out is required' in capsys.readouterr().err
    assert tool.main(['--out',
                      str(tmp_path), '--splits', '0.5', '0.1', '0.1']) == 2
    assert 'summing to 1' in capsys.readouterr().err
    assert not (tmp_path / 'meta.json').exists()
