import torch
from mmengine.config import Config

from nucseg.registry import MODELS
from nucseg.utils import register_all_modules

register_all_modules()


def _model():
    cfg = Config.fromfile('configs/_base_/models/unet_contour.py')
    cfg.model.backbone.update(base_channels=4, num_stages=3,
                              strides=(1, 1, 1), enc_num_convs=(1, 1, 1),
                              dec_num_convs=(1, 1), downsamples=(True, True),
                              enc_dilations=(1, 1, 1), dec_dilations=(1, 1))
    cfg.model.decode_head.update(in_channels=4, channels=4, in_index=2)
    return MODELS.build(cfg.model)


def _batch(model, h=48, w=40):
    from nucseg.datasets.transforms import (GenerateNucleiTarget,
                                            PackNucleiInputs)
    g = torch.Generator().manual_seed(0)
    img = torch.randint(0, 255, (h, w, 3), generator=g).numpy().astype(
        'uint8')
    inst = torch.zeros(h, w, dtype=torch.int32)
    inst[5:15, 5:15] = 1
    inst[20:30, 10:30] = 2
    res = dict(img=img, gt_instance_map=inst.numpy(),
               seg_fields=['gt_instance_map'], img_path='a.png',
               img_shape=(h, w), ori_shape=(h, w))
    packed = PackNucleiInputs()(GenerateNucleiTarget()(res))
    return model.data_preprocessor(
        dict(inputs=[packed['inputs']],
             data_samples=[packed['data_samples']]), training=False)


def test_loss_and_instance_prediction(repo_root, monkeypatch):
    monkeypatch.chdir(repo_root)
    torch.manual_seed(0)
    model = _model()
    data = _batch(model)
    losses = model.loss(data['inputs'], data['data_samples'])
    assert 'decode.loss_ce' in losses
    assert torch.isfinite(losses['decode.loss_ce'])
    losses['decode.loss_ce'].backward()
    model.eval()
    with torch.no_grad():
        out = model.predict(data['inputs'], data['data_samples'])
    sample = out[0]
    # Non-divisible 48x40 input was padded to 48x48 and cropped back.
    assert sample.pred_sem_seg.data.shape == (1, 48, 40)
    assert sample.pred_instance_map.data.shape == (1, 48, 40)
    assert sample.pred_instance_map.data.dtype == torch.int64
