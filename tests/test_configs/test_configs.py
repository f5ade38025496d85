"""Every config parses, and its model, pipelines and evaluators build.

Configs that load an official SAM checkpoint are built with a random
checkpoint of the same layout (``segment_anything.build_sam_vit_b``), once
for the first such config (real loading path) and without weights for the
others (architecture only), to keep the suite fast.
"""
from pathlib import Path

import pytest
from mmengine.config import Config, ConfigDict

from nucseg.registry import METRICS, MODELS, TRANSFORMS
from nucseg.utils import register_all_modules

REPO = Path(__file__).resolve().parents[2]
CONFIGS = sorted(
    str(p.relative_to(REPO))
    for p in list((REPO / 'configs').glob('*/*.py')) +
    list((REPO / 'projects').glob('*/configs/*.py'))
    if '_base_' not in p.parts)
_LOADED = []


@pytest.fixture(scope='module')
def sam_vit_b_file(sam_vit_b_checkpoint):
    # written once per session by tests/test_configs/conftest.py
    return str(sam_vit_b_checkpoint)


def _set_checkpoints(node, value) -> int:
    """Replace every SAM ``checkpoint`` value in a model config."""
    count = 0
    if isinstance(node, (dict, ConfigDict)):
        for key, val in node.items():
            if key == 'checkpoint' and isinstance(val, str):
                node[key] = value
                count += 1
            else:
                count += _set_checkpoints(val, value)
    elif isinstance(node, (list, tuple)):
        count += sum(_set_checkpoints(v, value) for v in node)
    return count


def _datasets(cfg_dataset):
    if 'datasets' in cfg_dataset:
        return list(cfg_dataset.datasets)
    if 'domain_a' in cfg_dataset:  # unpaired (CycleGAN)
        return [cfg_dataset.domain_a, cfg_dataset.domain_b]
    return [cfg_dataset]


@pytest.mark.parametrize('path', CONFIGS)
def test_config_builds(path, monkeypatch, request):
    monkeypatch.chdir(REPO)
    monkeypatch.syspath_prepend(str(REPO / 'projects' / 'tversky_loss'))
    register_all_modules()
    cfg = Config.fromfile(path)
    assert cfg.default_scope == 'nucseg'
    has_sam = _set_checkpoints(cfg.model, None) > 0
    if has_sam and not _LOADED:
        ckpt = request.getfixturevalue('sam_vit_b_file')
        cfg = Config.fromfile(path)
        _set_checkpoints(cfg.model, ckpt)
        _LOADED.append(path)
    model = MODELS.build(cfg.model)
    # Every model predicts instance maps (a post-processor, the
    # training-free SPROUT's soft NMS, PDAM's mask painting), except image
    # translators (CycleGAN), which are trained only.
    translator = hasattr(model, 'translate')
    assert hasattr(model, 'postprocessor') or hasattr(model, 'nms') or \
        hasattr(model, 'paint') or translator
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        if cfg.get(loader) is None:  # training-free: test only
            assert loader != 'test_dataloader' or translator
            continue
        for ds in _datasets(cfg[loader].dataset):
            for t in ds.pipeline:
                TRANSFORMS.build(t)
    for metric in cfg.get('val_evaluator') or cfg.get('test_evaluator') \
            or []:
        METRICS.build(metric)
    if 'default_hooks' in cfg:
        ckpt_hook = cfg.default_hooks.checkpoint
        assert ckpt_hook.get('save_best', 'aji') == 'aji'


def test_configs_found():
    assert len(CONFIGS) >= 3
