"""Seeded N-shot subsets."""
import pytest

from nucseg.datasets import FewShotNucleiDataset, pick_shots


def test_pick_shots_is_seeded_and_nested():
    assert pick_shots(20, 4, 0) == pick_shots(20, 4, 0)
    assert pick_shots(20, 4, 0) != pick_shots(20, 4, 1)
    sets = [set(pick_shots(20, n, 3)) for n in (1, 2, 4, 8, 10, 20)]
    assert all(a <= b for a, b in zip(sets, sets[1:]))
    assert sets[-1] == set(range(20))
    with pytest.raises(ValueError, match='1..5'):
        pick_shots(5, 6, 0)
    with pytest.raises(ValueError):
        pick_shots(5, 0, 0)


def test_few_shot_dataset(synthetic_he):
    full = FewShotNucleiDataset(data_root=synthetic_he, split='train',
                                pipeline=[])
    two = FewShotNucleiDataset(data_root=synthetic_he, split='train',
                               num_shots=2, shot_seed=5, pipeline=[])
    again = FewShotNucleiDataset(data_root=synthetic_he, split='train',
                                 num_shots=2, shot_seed=5, pipeline=[])
    assert len(full) == 4 and len(two) == 2
    assert two.shot_names == again.shot_names
    assert set(two.shot_names) <= set(full.shot_names)
    picked = [full.shot_names[i] for i in pick_shots(4, 2, 5)]
    assert two.shot_names == picked
    with pytest.raises(ValueError, match='has only 4 images'):
        FewShotNucleiDataset(data_root=synthetic_he, split='train',
                             num_shots=9, pipeline=[])
    with pytest.raises(ValueError, match='0-shot'):
        FewShotNucleiDataset(data_root=synthetic_he, split='train',
                             num_shots=0, pipeline=[])
