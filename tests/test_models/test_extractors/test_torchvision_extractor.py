import importlib.util

import pytest
import torch
from torchvision.models import get_model

from nucseg.models.extractors.torchvision_extractor import (
    IMAGENET_MEAN, IMAGENET_STD, TimmExtractor, TorchvisionExtractor)
from nucseg.registry import MODELS


@pytest.fixture(scope='module')
def resnet18_ckpt(tmp_path_factory):
    torch.manual_seed(0)
    model = get_model('resnet18', weights=None)
    path = tmp_path_factory.mktemp('ckpt') / 'resnet18.pth'
    torch.save({'state_dict': {f'module.{k}': v
                               for k, v in model.state_dict().items()}},
               path)
    return model.eval(), str(path)


@pytest.mark.parametrize('layer, stride, channels', [('layer1', 4, 64),
                                                     ('layer2', 8, 128)])
def test_shapes_and_stride(layer, stride, channels):
    m = TorchvisionExtractor('resnet18', layer, probe_size=64)
    assert (m.stride, m.out_channels) == (stride, channels)
    out = m(torch.rand(2, 3, 64, 96) * 255)
    assert out.shape == (2, channels, 64 // stride, 96 // stride)


def test_local_weights_and_imagenet_normalisation(resnet18_ckpt):
    model, path = resnet18_ckpt
    m = MODELS.build(dict(type='TorchvisionExtractor', name='resnet18',
                          layer='layer2', weights=path, probe_size=64))
    img = torch.rand(1, 3, 64, 64) * 255
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    x = (img / 255 - mean) / std
    with torch.no_grad():
        x = model.maxpool(model.relu(model.bn1(model.conv1(x))))
        expected = model.layer2(model.layer1(x))
        out = m(img)
    torch.testing.assert_close(out, expected)


def test_frozen_stays_in_eval_mode():
    m = TorchvisionExtractor('resnet18', 'layer1', probe_size=32)
    m.train()
    assert not m.training and not m.body.training
    assert not any(p.requires_grad for p in m.parameters())
    t = TorchvisionExtractor('resnet18', 'layer1', frozen=False,
                             probe_size=32)
    t.train()
    assert t.body.training and all(p.requires_grad for p in t.parameters())


def test_errors(tmp_path):
    with pytest.raises(KeyError, match='no node or module'):
        TorchvisionExtractor('resnet18', 'layer9', probe_size=32)
    with pytest.raises(KeyError, match='unknown torchvision model'):
        TorchvisionExtractor('resnet9000')
    with pytest.raises(ValueError, match='feature grid'):
        TorchvisionExtractor('resnet18', 'flatten', probe_size=32)
    with pytest.raises(FileNotFoundError, match='never downloads'):
        TorchvisionExtractor('resnet18', weights=str(tmp_path / 'x.pth'))
    bad = tmp_path / 'bad.pth'
    torch.save({'conv1.weight': torch.zeros(1)}, bad)
    with pytest.raises(RuntimeError, match='size mismatch|Missing'):
        TorchvisionExtractor('resnet18', weights=str(bad), probe_size=32)
    m = TorchvisionExtractor('resnet18', 'layer1', probe_size=32)
    with pytest.raises(ValueError, match='B x 3 x H x W'):
        m(torch.zeros(1, 1, 32, 32))


@pytest.mark.skipif(importlib.util.find_spec('timm') is not None,
                    reason='timm is installed')
def test_timm_missing_gives_clear_error():
    with pytest.raises(ImportError, match='pip install timm'):
        TimmExtractor('resnet18')


@pytest.mark.skipif(importlib.util.find_spec('timm') is None,
                    reason='timm is not installed')
def test_timm_extractor_shapes():
    m = TimmExtractor('resnet18', index=2, probe_size=64)
    out = m(torch.rand(1, 3, 64, 64) * 255)
    assert out.shape[-2:] == (64 // m.stride, 64 // m.stride)
