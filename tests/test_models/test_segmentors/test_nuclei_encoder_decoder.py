import torch
from mmengine.config import Config, ConfigDict

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


def _full_depth_model():
    """The demo U-Net (4 down-samplings: divisor 16), 4 channels wide."""
    cfg = Config.fromfile('configs/_base_/models/unet_contour.py')
    cfg.model.backbone.base_channels = 4
    cfg.model.decode_head.update(in_channels=4, channels=4)
    return MODELS.build(cfg.model).eval()


def test_whole_inference_pads_to_the_divisor(repo_root, monkeypatch):
    """mmseg asserts 'divisible by the whole downsample rate 16' on a
    50x70 image; nucseg pads to 64x80 and crops the logits back."""
    monkeypatch.chdir(repo_root)
    torch.manual_seed(0)
    model = _full_depth_model()
    data = _batch(model, h=50, w=70)
    assert data['inputs'].shape[-2:] == (50, 70)  # no test-time padding
    with torch.no_grad():
        out = model.predict(data['inputs'], data['data_samples'])
    assert model.size_divisor == 16
    with torch.no_grad():
        logits = model.encode_decode(data['inputs'],
                                     [s.metainfo for s in
                                      data['data_samples']])
    assert out[0].pred_instance_map.data.shape == (1, 50, 70)
    assert logits.shape[-2:] == (50, 70)
    # The crop is the top-left of the padded image's logits.
    padded = torch.nn.functional.pad(data['inputs'], (0, 10, 0, 14))
    with torch.no_grad():
        ref = model.encode_decode(padded, [dict(img_shape=(64, 80),
                                                pad_shape=(64, 80))])
    torch.testing.assert_close(logits, ref[..., :50, :70])

    # Slide windows of a non-divisible size are padded too.
    model.test_cfg = ConfigDict(mode='slide', crop_size=(40, 40),
                                stride=(30, 30))
    with torch.no_grad():
        out = model.predict(data['inputs'], data['data_samples'])
    assert out[0].pred_instance_map.data.shape == (1, 50, 70)
    # An explicit divisor wins over the backbone's.
    model.test_cfg = ConfigDict(mode='whole', size_divisor=32)
    assert model.size_divisor == 32
