"""Shared fixtures: small synthetic data sets written once per session."""
import os
import os.path as osp
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / 'shared' / 'data'

# Keep BLAS/OpenMP from oversubscribing the 2 CI cores in subprocesses.
os.environ.setdefault('OMP_NUM_THREADS', '2')


@pytest.fixture(scope='session')
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope='module')
def torch_one_thread():
    """One intra-op thread for the module: the small ops of tiny models
    (SAM's decoder on a few tokens) are much slower with two contended
    threads than with one."""
    import torch
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope='session')
def shared_data() -> Path:
    """``../shared/data`` or skip (it is not part of a user's clone)."""
    if not SHARED_DATA.is_dir():
        pytest.skip('../shared/data is not present')
    return SHARED_DATA


def _make(root: Path, domain: str, num: int, size: int, seed: int) -> str:
    from nucseg.datasets.synthetic import make_dataset
    out = root / domain
    if not (out / 'splits' / 'train.txt').is_file():
        make_dataset(
            str(out), domain=domain, num=num, size=size, seed=seed,
            splits=(0.5, 0.25, 0.25))
    return str(out)


@pytest.fixture(scope='session')
def synthetic_he(tmp_path_factory) -> str:
    """8 synthetic H&E images of 64x64 (4 train, 2 val, 2 test)."""
    return _make(tmp_path_factory.mktemp('synth'), 'he_kumar', 8, 64, 0)


@pytest.fixture(scope='session')
def synthetic_domains(tmp_path_factory) -> dict:
    """Three small domains for multi-domain tests."""
    root = tmp_path_factory.mktemp('domains')
    return {
        d: _make(root, d, 6, 64, i)
        for i, d in enumerate(('he_kumar', 'he_tnbc', 'fluo'))
    }


def pytest_report_header(config):
    return f'nucseg tests; shared data present: {osp.isdir(SHARED_DATA)}'
