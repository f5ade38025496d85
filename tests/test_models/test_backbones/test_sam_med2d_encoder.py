"""SAM-Med2D image encoder: adapter maths and checkpoint key layout."""
import pytest
import torch
import torch.nn.functional as F

from nucseg.models.backbones import SAMMed2DAdapter, SAMMed2DImageEncoder
from nucseg.models.utils import SamCheckpointError


def test_adapter_matches_its_definition():
    torch.manual_seed(0)
    ada = SAMMed2DAdapter(8)
    x = torch.randn(2, 4, 6, 8)  # B, H, W, C
    c = x.permute(0, 3, 1, 2)
    w1, w2 = ada.channel[0].weight, ada.channel[2].weight
    gate = torch.sigmoid(F.relu(c.mean((2, 3)) @ w1.T) @ w2.T)
    y = c * gate[:, :, None, None]
    z = F.relu(F.conv2d(y, ada.spatial[0].weight, stride=2, padding=1))
    z = F.relu(F.conv_transpose2d(z, ada.spatial[2].weight, stride=2,
                                  padding=1))
    ref = F.layer_norm((c + z).permute(0, 2, 3, 1), (8, ),
                       ada.norm.weight, ada.norm.bias)
    assert torch.allclose(ada(x), ref, atol=1e-5)
    assert sorted(n for n, _ in ada.named_parameters()) == [
        'channel.0.weight', 'channel.2.weight', 'norm.bias', 'norm.weight',
        'spatial.0.weight', 'spatial.2.weight']


def _med2d_checkpoint(enc, path):
    """``enc``'s weights in SAM-Med2D's file layout."""
    state = {
        f'image_encoder.{k.replace(".adapter.", ".Adapter.")}': v
        for k, v in enc.encoder.image_encoder.state_dict().items()
    }
    state['mask_decoder.dummy'] = torch.zeros(1)
    torch.save({'model': state, 'epoch': 3}, path)


def test_load_sam_med2d_layout(tmp_path):
    torch.manual_seed(0)
    src = SAMMed2DImageEncoder(arch='tiny', image_size=64,
                               attn_impl='native')
    path = tmp_path / 'sam-med2d_tiny.pth'
    _med2d_checkpoint(src, path)
    assert any('.Adapter.' in k for k in torch.load(
        path, weights_only=True)['model'])
    torch.manual_seed(1)
    enc = SAMMed2DImageEncoder(arch='tiny', image_size=64,
                               checkpoint=str(path), attn_impl='native')
    assert not any(p.requires_grad for p in enc.parameters())
    x = torch.randn(1, 3, 64, 64)
    src.eval(), enc.train()  # stays in eval mode
    assert not enc.encoder.image_encoder.training
    out = enc(x)[0]
    assert out.shape == (1, 256, 4, 4)
    assert torch.allclose(out, src(x)[0], atol=1e-5)
    # the adapters take part: zeroing them changes the embedding
    for blk in enc.encoder.image_encoder.blocks:
        blk.adapter.spatial[0].weight.data.zero_()
        blk.adapter.channel[2].weight.data.zero_()
    assert not torch.allclose(enc(x)[0], out)


def test_plain_sam_checkpoint_is_rejected(tmp_path):
    from nucseg.models.backbones import SAMImageEncoder
    plain = SAMImageEncoder(arch='tiny', image_size=64, adapter=None)
    path = tmp_path / 'sam_tiny.pth'
    torch.save({f'image_encoder.{k}': v for k, v in
                plain.image_encoder.state_dict().items()}, path)
    with pytest.raises(SamCheckpointError, match='missing .*adapter'):
        SAMMed2DImageEncoder(arch='tiny', image_size=64,
                             checkpoint=str(path))
