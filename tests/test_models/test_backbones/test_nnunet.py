"""nnU-Net v2 2-D PlainConvUNet wrapper (topology, extra bottleneck)."""
import pytest
import torch
from dynamic_network_architectures.architectures.unet import PlainConvUNet
from torch import nn

from nucseg.models.backbones import NNUNetPlainConvUNet, nnunet_2d_topology


def test_topology_matches_nnunet_2d_defaults():
    topo = nnunet_2d_topology((512, 512))
    assert topo['n_stages'] == 8
    assert topo['features_per_stage'] == [32, 64, 128, 256, 512, 512, 512,
                                          512]
    assert topo['strides'] == [[1, 1]] + [[2, 2]] * 7
    assert topo['kernel_sizes'] == [[3, 3]] * 8
    # 512 / 2^7 = 4 = nnU-Net's minimal feature map size
    small = nnunet_2d_topology((64, 64), base_features=4, max_features=32)
    assert small['n_stages'] == 5
    assert small['features_per_stage'] == [4, 8, 16, 32, 32]
    # anisotropic patch: the short axis stops pooling first
    aniso = nnunet_2d_topology((64, 32))
    assert aniso['strides'][-1] == [2, 1]
    with pytest.raises(ValueError, match='smaller than'):
        nnunet_2d_topology((2, 64))


def test_real_size_unet_has_8_encoder_and_7_decoder_stages():
    unet = NNUNetPlainConvUNet(patch_size=(512, 512),
                               extra_bottleneck_channels=256)
    assert len(unet.net.encoder.stages) == 8
    assert unet.num_decoder_stages == 7
    assert unet.total_stride == (128, 128)
    assert unet.bottleneck_channels == 512
    # the first decoder stage takes the bottleneck plus the SAM features
    first = unet.net.decoder.transpconvs[0]
    assert (first.in_channels, first.out_channels) == (512 + 256, 512)
    conv = unet.net.encoder.stages[0][0].convs[0]
    assert isinstance(conv.norm, nn.InstanceNorm2d) and conv.norm.affine
    assert isinstance(conv.nonlin, nn.LeakyReLU)
    assert conv.conv.bias is not None


def test_same_parameters_as_plain_conv_unet_without_extras():
    topo = nnunet_2d_topology((64, 64), base_features=4, max_features=32)
    ours = NNUNetPlainConvUNet(patch_size=64, base_features=4,
                               max_features=32)
    ref = PlainConvUNet(1, topo['n_stages'], topo['features_per_stage'],
                        nn.Conv2d, topo['kernel_sizes'], topo['strides'], 2,
                        2, 2, conv_bias=True, norm_op=nn.InstanceNorm2d,
                        norm_op_kwargs=dict(eps=1e-5, affine=True),
                        nonlin=nn.LeakyReLU,
                        nonlin_kwargs=dict(inplace=True))
    ref_shapes = {k: v.shape for k, v in ref.state_dict().items()}
    ours_shapes = {k[len('net.'):]: v.shape
                   for k, v in ours.state_dict().items()}
    assert ours_shapes == ref_shapes
    # identical weights give identical outputs (the wrapper adds nothing)
    ref.load_state_dict({k[len('net.'):]: v
                         for k, v in ours.state_dict().items()})
    x = torch.randn(2, 1, 64, 64)
    ours.eval(), ref.eval()
    assert torch.allclose(ours(x), ref(x), atol=1e-6)


def test_extra_bottleneck_features_and_deep_supervision():
    torch.manual_seed(0)
    unet = NNUNetPlainConvUNet(patch_size=64, base_features=4,
                               max_features=32, extra_bottleneck_channels=3)
    x = torch.randn(2, 1, 64, 64)
    skips = unet.encode(x)
    assert len(skips) == 5 and skips[-1].shape == (2, 32, 4, 4)
    extra = torch.randn(2, 3, 4, 4)
    out = unet.decode(skips, extra)
    assert out.shape == (2, 2, 64, 64)
    # the extra features reach the output
    assert not torch.allclose(out, unet.decode(skips, torch.zeros_like(
        extra)))
    outs = unet.decode(skips, extra, deep_supervision=True)
    assert [o.shape[-1] for o in outs] == [64, 32, 16, 8]
    assert torch.allclose(outs[0], out)
    assert unet.net.decoder.deep_supervision is False  # restored
    with pytest.raises(ValueError, match=r'shape \(2, 3, 4, 4\)'):
        unet.decode(skips, torch.randn(2, 2, 4, 4))
    with pytest.raises(ValueError, match='multiples of the total stride'):
        unet.encode(torch.randn(1, 1, 60, 64))


def test_encoder_and_decoder_parameters_partition_the_network():
    unet = NNUNetPlainConvUNet(patch_size=64, base_features=4,
                               max_features=32, extra_bottleneck_channels=2)
    enc = {id(p) for p in unet.encoder_parameters()}
    dec = {id(p) for p in unet.decoder_parameters()}
    assert enc and dec and not enc & dec
    assert enc | dec == {id(p) for p in unet.parameters()}


def test_plain_conv_unet_imports_without_timm_or_einops():
    """dynamic-network-architectures is installed --no-deps: its UNet must
    not need the declared timm / einops."""
    import subprocess
    import sys
    code = ('import sys\n'
            'from dynamic_network_architectures.architectures.unet import '
            'PlainConvUNet\n'
            "print([m for m in ('timm', 'einops') if m in sys.modules])")
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == '[]'
