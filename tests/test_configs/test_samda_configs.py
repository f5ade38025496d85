"""SAMDA's real-size configs: nnU-Net 2-D topology, vit_b SAM from a
checkpoint written here, the step chain (load_from) and run_stages."""
import os.path as osp
from pathlib import Path

import pytest
import torch
from mmengine.config import Config

from nucseg.registry import MODELS
from nucseg.utils import register_all_modules

REPO = Path(__file__).resolve().parents[2]
SAMDA = REPO / 'configs' / 'samda'
DIRECTIONS = ('kasthuripp2epfl', 'epfl2kasthuripp')


def _step_configs(direction):
    return [sorted(SAMDA.glob(f'samda-step{k}_sam-vit-b_*_{direction}-'
                              '512.py'))[0] for k in (1, 2, 3)]


@pytest.fixture(scope='module')
def step1_model(sam_vit_b_checkpoint):
    register_all_modules()
    cfg = Config.fromfile(_step_configs('kasthuripp2epfl')[0])
    cfg.model.sam_encoder.checkpoint = str(sam_vit_b_checkpoint)
    return MODELS.build(cfg.model)


def test_real_step1_topology_and_sam_weights(step1_model,
                                             sam_vit_b_checkpoint):
    model = step1_model
    assert len(model.unet.net.encoder.stages) == 8
    assert model.unet.num_decoder_stages == 7
    assert model.unet.topology['features_per_stage'][-1] == 512
    assert model.unet.net.decoder.transpconvs[0].in_channels == 512 + 256
    assert model.sam_encoder.arch == 'vit_b'
    assert model.data_preprocessor.sam_size == 1024
    official = torch.load(sam_vit_b_checkpoint, weights_only=True)
    ours = model.sam_encoder.image_encoder.state_dict()
    assert len(ours) == len([k for k in official
                             if k.startswith('image_encoder.')])
    for key, value in ours.items():
        assert torch.equal(value, official[f'image_encoder.{key}']), key
    assert not any(p.requires_grad for p in model.sam_encoder.parameters())
    assert model.stage == 1 and model.test_cfg['mode'] == 'slide'


def test_real_step3_loads_step1_keys(step1_model):
    cfg = Config.fromfile(_step_configs('kasthuripp2epfl')[2])
    assert cfg.model.sam_encoder.checkpoint is None  # from the chain
    with torch.device('meta'):  # architecture only: fast
        model = MODELS.build(cfg.model)
    assert model.stage == 3
    state = step1_model.state_dict()
    shapes = {k: v.shape for k, v in model.state_dict().items()}
    assert shapes == {k: v.shape for k, v in state.items()}
    model.load_state_dict(state, strict=True, assign=True)
    assert model.trainable_parts == ('unet_encoder', 'unet_decoder',
                                     'projector', 'sam_encoder')


@pytest.mark.parametrize('direction', DIRECTIONS)
def test_step_chain_settings(direction):
    cfgs = [Config.fromfile(p) for p in _step_configs(direction)]
    steps = [c.model.stage for c in cfgs]
    assert steps == [1, 2, 3]
    # Sec. 3.2: lr 1e-2, 1e-2, 1e-3; weight decay 3e-5 throughout;
    # 100 / 10 / 50 epochs of 250 iterations.
    assert [c.optim_wrapper.optimizer.lr for c in cfgs] == [1e-2, 1e-2, 1e-3]
    assert {c.optim_wrapper.optimizer.weight_decay for c in cfgs} == {3e-5}
    assert [c.train_cfg.max_iters for c in cfgs] == [25000, 2500, 12500]
    for c in cfgs:
        assert c.optim_wrapper.constructor == \
            'TrainableParamsOptimWrapperConstructor'
    # each step loads the previous step's last checkpoint
    for prev_path, prev, cur in zip(_step_configs(direction), cfgs, cfgs[1:]):
        assert cur.load_from == (f'work_dirs/{prev_path.stem}/iter_'
                                 f'{prev.train_cfg.max_iters}.pth')
    # step 2: paired raw source/target images; step 3: N target shots
    s2 = cfgs[1].train_dataloader
    assert s2.sampler.type == 'MultiDomainSampler'
    assert s2.sampler.domain_ratio == [6, 6]
    src, tgt = s2.dataset.datasets
    assert src.data_root == cfgs[0].train_dataloader.dataset.data_root
    assert tgt.data_root == cfgs[0].val_dataloader.dataset.data_root
    assert src.num_shots == tgt.num_shots == 20
    s3 = cfgs[2].train_dataloader.dataset
    assert s3.type == 'FewShotNucleiDataset' and s3.num_shots == 10
    assert s3.data_root == tgt.data_root


def _run_stages():
    """tools/samda/run_stages.py as a module (called in-process)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'samda_run_stages', REPO / 'tools' / 'samda' / 'run_stages.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_run_stages_dry_run(capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    run_stages = _run_stages()
    assert run_stages.main([
        '--preset', 'kasthuripp2epfl', '--work-dir', 'work_dirs/x',
        '--shots', '4', '--sam-checkpoint', 'checkpoints/medsam_vit_b.pth',
        '--dry-run']) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines()
             if ln.startswith('+ ')]
    assert len(lines) == 4  # three steps and the test
    work = osp.join(str(REPO), 'work_dirs', 'x')
    assert 'model.sam_encoder.checkpoint=checkpoints/medsam_vit_b.pth' in \
        lines[0]
    assert f'load_from={work}/step1/iter_25000.pth' in lines[1]
    assert f'load_from={work}/step2/iter_2500.pth' in lines[2]
    assert 'train_dataloader.dataset.num_shots=4' in lines[2]
    assert f'{work}/step3/iter_12500.pth' in lines[3]
    run_stages.main(['--preset', 'kasthuripp2epfl', '--work-dir',
                     'work_dirs/x', '--shots', '0', '--dry-run'])
    lines = [ln for ln in capsys.readouterr().out.splitlines()
             if ln.startswith('+ ')]
    assert len(lines) == 3 and 'step2/iter_2500.pth' in lines[2]
    assert 'tools/test.py' in lines[2]
    opts = run_stages.data_options(2, 'S', 'T')
    assert 'train_dataloader.dataset.datasets.0.data_root=S' in opts
    assert 'train_dataloader.dataset.datasets.1.data_root=T' in opts
