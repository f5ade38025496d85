"""nnU-Net v2's 2-D ``PlainConvUNet`` as a nucseg module (SAMDA's "expert").

The network itself comes from ``dynamic-network-architectures`` (the
architecture package of nnU-Net v2; installed without its optional
dependencies, see ``configs/samda/README.md``). This module only

* derives nnU-Net's default 2-D topology from the patch size
  (:func:`nnunet_2d_topology`: 3x3 kernels, 2 convs per stage, features
  ``min(32 * 2^i, 512)``, stride-2 stages until the feature map would
  drop below 4 pixels, i.e. 8 encoder / 7 decoder stages at 512 px),
* builds ``PlainConvUNet`` with nnU-Net's layer choices (conv bias,
  ``InstanceNorm2d(eps=1e-5, affine=True)``, ``LeakyReLU(0.01)``, He
  initialisation with ``neg_slope=1e-2``),
* widens the first decoder stage's transposed convolution so that extra
  feature maps (SAMDA: the projected SAM embedding) can be concatenated to
  the bottleneck (:meth:`NNUNetPlainConvUNet.decode`).
"""
import math
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from mmengine.model import BaseModule
from torch import Tensor, nn

from nucseg.registry import MODELS

__all__ = ['nnunet_2d_topology', 'NNUNetPlainConvUNet']

IntPair = Union[int, Sequence[int]]


def _pair(value: IntPair, name: str) -> Tuple[int, int]:
    if isinstance(value, int):
        value = (value, value)
    value = tuple(int(v) for v in value)
    if len(value) != 2 or min(value) <= 0:
        raise ValueError(f'{name} must be a positive int or (h, w), got '
                         f'{value}')
    return value


def nnunet_2d_topology(patch_size: IntPair,
                       base_features: int = 32,
                       max_features: int = 512,
                       min_feature_map_size: int = 4,
                       max_stages: Optional[int] = None) -> Dict[str, list]:
    """nnU-Net's default 2-D network topology for a patch size.

    Like nnU-Net v2's ``get_pool_and_conv_props`` for isotropic 2-D data:
    each axis is halved while it stays divisible by 2 and at least
    ``2 * min_feature_map_size``; the first stage has stride 1; kernels are
    3x3; stage ``i`` has ``min(base_features * 2^i, max_features)``
    feature maps.

    Args:
        patch_size (int | tuple[int, int]): Network input ``(h, w)``.
        base_features (int): Features of the first stage (nnU-Net: 32).
        max_features (int): Cap on the features (nnU-Net 2-D: 512).
        min_feature_map_size (int): Smallest bottleneck side (nnU-Net: 4).
        max_stages (int, optional): Cap on the number of stages.

    Returns:
        dict: ``n_stages`` (int), ``features_per_stage``, ``strides``
        (per stage ``[sy, sx]``) and ``kernel_sizes`` (per stage
        ``[3, 3]``).

    Raises:
        ValueError: The patch is too small for a single stage.
    """
    size = list(_pair(patch_size, 'patch_size'))
    if min(size) < min_feature_map_size:
        raise ValueError(f'patch_size {tuple(size)} is smaller than '
                         f'min_feature_map_size={min_feature_map_size}')
    strides = [[1, 1]]
    while max_stages is None or len(strides) < max_stages:
        step = [
            2 if s % 2 == 0 and s >= 2 * min_feature_map_size else 1
            for s in size
        ]
        if step == [1, 1]:
            break
        strides.append(step)
        size = [s // k for s, k in zip(size, step)]
    n = len(strides)
    return dict(
        n_stages=n,
        features_per_stage=[
            min(base_features * 2**i, max_features) for i in range(n)
        ],
        strides=strides,
        kernel_sizes=[[3, 3]] * n)


def _dynamic_network_architectures():
    """``(PlainConvUNet, InitWeights_He)``, imported on first use."""
    try:
        from dynamic_network_architectures.architectures.unet import \
            PlainConvUNet
        from dynamic_network_architectures.initialization.weight_init \
            import InitWeights_He
    except ImportError as err:
        raise ImportError(
            'NNUNetPlainConvUNet needs dynamic-network-architectures: '
            'pip install --no-deps dynamic-network-architectures==0.4.4 '
            '(tools/misc/setup_env.sh installs it; see '
            'requirements/nodeps.txt)') from err
    return PlainConvUNet, InitWeights_He


@MODELS.register_module()
class NNUNetPlainConvUNet(BaseModule):
    """nnU-Net v2 2-D ``PlainConvUNet`` with room for bottleneck features.

    The ``dynamic_network_architectures`` network is kept as ``self.net``
    (state-dict keys ``net.encoder.*`` and ``net.decoder.*``; the decoder
    holds a reference to the encoder, so encoder tensors also appear under
    ``net.decoder.encoder.*``, as in nnU-Net's own checkpoints).

    With ``extra_bottleneck_channels = E > 0`` the first decoder stage's
    transposed convolution takes ``C_bottleneck + E`` channels (a fresh
    ``ConvTranspose2d`` with the original stride and output channels,
    He-initialised like the rest); :meth:`decode` concatenates the extra
    features to the bottleneck before the decoder runs. Nothing else of
    the architecture changes.

    Args:
        in_channels (int): Input channels (1 for grey EM).
        num_classes (int): Output channels (2: background, foreground;
            softmax as in nnU-Net).
        patch_size (int | tuple[int, int]): Training patch; sets the
            topology (:func:`nnunet_2d_topology`) unless ``n_stages`` is
            given.
        base_features (int): First-stage features (nnU-Net: 32).
        max_features (int): Feature cap (nnU-Net 2-D: 512).
        n_stages (int, optional): Cap the number of stages (default: as
            many as the patch allows).
        n_conv_per_stage (int): Convs per encoder stage (nnU-Net: 2).
        n_conv_per_stage_decoder (int): Convs per decoder stage (2).
        extra_bottleneck_channels (int): ``E`` above (0 = plain U-Net).
        init_cfg (dict, optional): mmengine init config (default: none;
            nnU-Net's He initialisation is applied at construction).

    Shape:
        - encode: ``(B, in_channels, H, W)`` -> list of skips, the last
          ``(B, F_last, H / s, W / s)`` with ``s`` the total stride
        - decode: logits ``(B, num_classes, H, W)``; with deep
          supervision a list from full resolution downwards
    """

    def __init__(self,
                 in_channels: int = 1,
                 num_classes: int = 2,
                 patch_size: IntPair = (512, 512),
                 base_features: int = 32,
                 max_features: int = 512,
                 n_stages: Optional[int] = None,
                 n_conv_per_stage: int = 2,
                 n_conv_per_stage_decoder: int = 2,
                 extra_bottleneck_channels: int = 0,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if in_channels < 1 or num_classes < 1:
            raise ValueError('in_channels and num_classes must be >= 1, got '
                             f'{in_channels}, {num_classes}')
        if extra_bottleneck_channels < 0:
            raise ValueError('extra_bottleneck_channels must be >= 0, got '
                             f'{extra_bottleneck_channels}')
        topo = nnunet_2d_topology(
            patch_size, base_features, max_features, max_stages=n_stages)
        if topo['n_stages'] < 2:
            raise ValueError(f'patch_size {patch_size} allows only one '
                             'stage; a U-Net needs at least two')
        self.patch_size = _pair(patch_size, 'patch_size')
        self.topology = topo
        self.num_classes = num_classes
        self.extra_bottleneck_channels = int(extra_bottleneck_channels)
        PlainConvUNet, InitWeights_He = _dynamic_network_architectures()
        self.net = PlainConvUNet(
            input_channels=in_channels,
            n_stages=topo['n_stages'],
            features_per_stage=topo['features_per_stage'],
            conv_op=nn.Conv2d,
            kernel_sizes=topo['kernel_sizes'],
            strides=topo['strides'],
            n_conv_per_stage=n_conv_per_stage,
            num_classes=num_classes,
            n_conv_per_stage_decoder=n_conv_per_stage_decoder,
            conv_bias=True,
            norm_op=nn.InstanceNorm2d,
            norm_op_kwargs=dict(eps=1e-5, affine=True),
            dropout_op=None,
            dropout_op_kwargs=None,
            nonlin=nn.LeakyReLU,
            nonlin_kwargs=dict(inplace=True),
            deep_supervision=False)
        if self.extra_bottleneck_channels:
            old = self.net.decoder.transpconvs[0]
            self.net.decoder.transpconvs[0] = nn.ConvTranspose2d(
                old.in_channels + self.extra_bottleneck_channels,
                old.out_channels,
                kernel_size=old.kernel_size,
                stride=old.stride,
                bias=old.bias is not None)
        self.net.apply(InitWeights_He(1e-2))

    @property
    def total_stride(self) -> Tuple[int, int]:
        """Input-to-bottleneck downsampling ``(sy, sx)``."""
        sy = math.prod(s[0] for s in self.topology['strides'])
        sx = math.prod(s[1] for s in self.topology['strides'])
        return sy, sx

    @property
    def bottleneck_channels(self) -> int:
        """Channels of the deepest encoder stage (without extras)."""
        return int(self.topology['features_per_stage'][-1])

    @property
    def num_decoder_stages(self) -> int:
        return len(self.net.decoder.stages)

    def encoder_parameters(self) -> List[nn.Parameter]:
        """Parameters of the encoder (each once)."""
        return list(self.net.encoder.parameters())

    def decoder_parameters(self) -> List[nn.Parameter]:
        """Parameters of the decoder proper (not its encoder reference)."""
        enc = {id(p) for p in self.net.encoder.parameters()}
        return [p for p in self.net.decoder.parameters() if id(p) not in enc]

    def encode(self, x: Tensor) -> List[Tensor]:
        """Encoder skips, highest resolution first, bottleneck last."""
        sy, sx = self.total_stride
        if x.dim() != 4 or x.shape[2] % sy or x.shape[3] % sx:
            raise ValueError(
                f'NNUNetPlainConvUNet input must be BxCxHxW with H, W '
                f'multiples of the total stride {(sy, sx)}, got '
                f'{tuple(x.shape)}')
        return self.net.encoder(x)

    def decode(self,
               skips: List[Tensor],
               extra: Optional[Tensor] = None,
               deep_supervision: bool = False
               ) -> Union[Tensor, List[Tensor]]:
        """Run the decoder, with ``extra`` concatenated to the bottleneck.

        Args:
            skips (list[Tensor]): From :meth:`encode`.
            extra (Tensor, optional): ``(B, E, h, w)`` at the bottleneck
                size; required iff ``extra_bottleneck_channels > 0``.
            deep_supervision (bool): Return every decoder stage's logits
                (full resolution first), as nnU-Net trains.

        Returns:
            Tensor | list[Tensor]: Logits.
        """
        skips = list(skips)
        if self.extra_bottleneck_channels:
            bottleneck = skips[-1]
            want = (bottleneck.shape[0], self.extra_bottleneck_channels,
                    *bottleneck.shape[2:])
            got = None if extra is None else tuple(extra.shape)
            if got != want:
                raise ValueError(
                    'NNUNetPlainConvUNet.decode needs extra bottleneck '
                    f'features of shape {want}, got {got}')
            skips[-1] = torch.cat([bottleneck, extra], dim=1)
        elif extra is not None:
            raise ValueError('this U-Net was built without '
                             'extra_bottleneck_channels; extra must be None')
        decoder = self.net.decoder
        previous = decoder.deep_supervision
        decoder.deep_supervision = bool(deep_supervision)
        try:
            return decoder(skips)
        finally:
            decoder.deep_supervision = previous

    def forward(self,
                x: Tensor,
                extra: Optional[Tensor] = None,
                deep_supervision: bool = False
                ) -> Union[Tensor, List[Tensor]]:
        """``decode(encode(x), extra, deep_supervision)``."""
        return self.decode(self.encode(x), extra, deep_supervision)
