"""The demo's U-Net contour baseline must actually learn nuclei.

Guards against silent training failures (e.g. a long plateau predicting
background everywhere, which happened with channel dropout and a
single-conv 16-channel head): a short in-process run through mmengine's
Runner on synthetic H&E must separate nuclei from background.
"""
import torch
from mmengine.config import Config
from mmengine.runner import Runner

from nucseg.utils import register_all_modules

CONFIG = 'configs/unet/unet-s5-c16_contour_1xb4-300it_synth-he-256x256.py'


def test_demo_model_learns_foreground(synthetic_he, repo_root, tmp_path,
                                      monkeypatch):
    monkeypatch.chdir(repo_root)
    register_all_modules(init_default_scope=False)
    cfg = Config.fromfile(CONFIG)
    cfg.work_dir = str(tmp_path)
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=60)
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.test_cfg = cfg.test_dataloader = cfg.test_evaluator = None
    cfg.param_scheduler = []
    cfg.default_hooks.checkpoint = None
    cfg.custom_hooks = []
    cfg.train_dataloader.update(num_workers=0, persistent_workers=False)
    cfg.train_dataloader.dataset.data_root = synthetic_he
    cfg.train_dataloader.dataset.pipeline[2].crop_size = (64, 64)
    cfg.randomness = dict(seed=0)
    runner = Runner.from_cfg(cfg)
    runner.train()

    model = runner.model
    model.eval()
    dataset = runner.train_dataloader.dataset
    dice = []
    for i in range(len(dataset)):
        item = dataset[i]
        data = model.data_preprocessor(
            dict(inputs=[item['inputs']],
                 data_samples=[item['data_samples']]), False)
        with torch.no_grad():
            sample = model.predict(data['inputs'], data['data_samples'])[0]
        # Foreground as the instance post-processor defines it.
        probs = sample.seg_logits.data.softmax(0)
        pred = probs[1:].sum(0) > 0.5
        gt = item['data_samples'].gt_sem_seg.data[0] > 0
        dice.append(2 * (pred & gt).sum().item() /
                    (pred.sum() + gt.sum()).item())
        assert sample.pred_instance_map.data.shape == gt[None].shape
    assert sum(dice) / len(dice) > 0.6, dice
