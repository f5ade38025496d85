"""N-shot subsets of a nuclei data set, picked reproducibly by a seed."""
from typing import List, Optional

import numpy as np
from mmengine.logging import print_log

from nucseg.registry import DATASETS
from .nuclei_dataset import NucleiDataset

__all__ = ['FewShotNucleiDataset', 'pick_shots']


def pick_shots(num_items: int, num_shots: int, seed: int) -> List[int]:
    """Indices of ``num_shots`` of ``num_items`` items, chosen by ``seed``.

    The indices are the first ``num_shots`` entries of one seeded
    permutation (``numpy.random.default_rng(seed)``), returned sorted, so
    for a fixed seed the 1-shot set is inside the 2-shot set, which is
    inside the 4-shot set, and so on (nested sweeps as in SAMDA's Table 1).

    Raises:
        ValueError: ``num_shots`` is not in ``1..num_items``.
    """
    if not 1 <= int(num_shots) <= int(num_items):
        raise ValueError(f'num_shots must be in 1..{num_items}, got '
                         f'{num_shots}')
    order = np.random.default_rng(int(seed)).permutation(int(num_items))
    return sorted(int(i) for i in order[:int(num_shots)])


@DATASETS.register_module()
class FewShotNucleiDataset(NucleiDataset):
    """:class:`NucleiDataset` restricted to ``num_shots`` seeded images.

    The images of ``split`` (or all) are listed as usual, then
    :func:`pick_shots` keeps ``num_shots`` of them. The chosen names are
    logged and kept in :attr:`shot_names`.

    Args:
        num_shots (int, optional): Images to keep; None keeps all.
        shot_seed (int): Seed of the choice.
        *args, **kwargs: :class:`NucleiDataset` arguments.
    """

    def __init__(self,
                 *args,
                 num_shots: Optional[int] = None,
                 shot_seed: int = 0,
                 **kwargs) -> None:
        if num_shots is not None and int(num_shots) < 1:
            raise ValueError(
                f'FewShotNucleiDataset: num_shots must be >= 1 or None, got '
                f'{num_shots} (0-shot SAMDA skips step 3)')
        self.num_shots = None if num_shots is None else int(num_shots)
        self.shot_seed = int(shot_seed)
        self.shot_names: List[str] = []
        super().__init__(*args, **kwargs)

    def load_data_list(self) -> List[dict]:
        data_list = super().load_data_list()
        if self.num_shots is None:
            self.shot_names = [d['name'] for d in data_list]
            return data_list
        if self.num_shots > len(data_list):
            raise ValueError(
                f'FewShotNucleiDataset: num_shots={self.num_shots} but '
                f'{self.data_root} split {self.split!r} has only '
                f'{len(data_list)} images')
        keep = pick_shots(len(data_list), self.num_shots, self.shot_seed)
        data_list = [data_list[i] for i in keep]
        self.shot_names = [d['name'] for d in data_list]
        print_log(
            f'FewShotNucleiDataset {self.domain}: {self.num_shots} shot(s) '
            f'with seed {self.shot_seed}: {", ".join(self.shot_names)}',
            logger='current')
        return data_list
