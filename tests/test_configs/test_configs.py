"""Every config parses, and its model, pipelines and evaluators build."""
from pathlib import Path

import pytest
from mmengine.config import Config

from nucseg.registry import METRICS, MODELS, TRANSFORMS
from nucseg.utils import register_all_modules

REPO = Path(__file__).resolve().parents[2]
CONFIGS = sorted(
    str(p.relative_to(REPO))
    for p in list((REPO / 'configs').glob('*/*.py')) +
    list((REPO / 'projects').glob('*/configs/*.py'))
    if '_base_' not in p.parts)


@pytest.mark.parametrize('path', CONFIGS)
def test_config_builds(path, monkeypatch):
    monkeypatch.chdir(REPO)
    monkeypatch.syspath_prepend(str(REPO / 'projects' / 'tversky_loss'))
    register_all_modules()
    cfg = Config.fromfile(path)
    assert cfg.default_scope == 'nucseg'
    model = MODELS.build(cfg.model)
    assert hasattr(model, 'postprocessor')
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        for t in cfg[loader].dataset.pipeline:
            TRANSFORMS.build(t)
    for metric in cfg.val_evaluator:
        METRICS.build(metric)
    assert cfg.default_hooks.checkpoint.save_best == 'aji'


def test_configs_found():
    assert len(CONFIGS) >= 3
