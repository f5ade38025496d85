"""Dense features from classification backbones (torchvision, timm).

Both extractors follow the nucseg extractor interface: ``forward(img)`` with
``img`` ``B x 3 x H x W`` float RGB in ``[0, 255]`` returns a ``B x D x h x
w`` feature grid; ``stride`` is the number of input pixels per feature cell
and ``out_channels`` is ``D`` (both measured once at construction by a
probe forward pass of a ``probe_size`` square). Inputs are normalised with
the backbone's mean/std (ImageNet for torchvision). Weights are either
random (``weights=None``; tests, demos) or read from a local checkpoint
with :func:`nucseg.utils.checkpoint.load_trusted`; nothing is downloaded.
Backbones are frozen by default (no gradients, always in eval mode), as
SPROUT uses them training-free.
"""
import os
from typing import Dict, Optional

import torch
from mmengine.model import BaseModule
from torch import Tensor, nn

from nucseg.registry import MODELS
from nucseg.utils.checkpoint import load_trusted, tensor_state_dict

__all__ = ['TorchvisionExtractor', 'TimmExtractor', 'IMAGENET_MEAN',
           'IMAGENET_STD', 'load_checkpoint_weights_only']

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def load_checkpoint_weights_only(filename: str) -> Dict[str, Tensor]:
    """Read a state dict of tensors from a trusted-loading checkpoint.

    Accepts a plain state dict or one nested under ``state_dict`` /
    ``model``; strips a leading ``module.`` (wrapped-model checkpoints).

    Raises:
        FileNotFoundError: ``filename`` does not exist.
        UntrustedCheckpointError: The file holds pickled code.
        CorruptCheckpointError: The file cannot be read.
        CheckpointMismatchError: Not a tensor-only checkpoint.
    """
    if not os.path.isfile(filename):
        raise FileNotFoundError(
            f'weights checkpoint not found: {filename!r} (weights must be '
            'None or a local file; nucseg never downloads weights)')
    return dict(tensor_state_dict(load_trusted(filename), filename))


class _FrozenExtractor(BaseModule):
    """Normalisation, freezing and stride probing shared by extractors."""

    def __init__(self, mean, std, frozen: bool,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.frozen = frozen
        self.register_buffer(
            'mean', torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1),
            persistent=False)
        self.register_buffer(
            'std', torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1),
            persistent=False)

    def _finish(self, probe_size: int) -> None:
        """Freeze, then measure ``stride`` and ``out_channels``."""
        if self.frozen:
            self.requires_grad_(False)
            self.eval()
        was_training = self.training
        self.eval()
        with torch.no_grad():
            out = self.forward(
                torch.full((1, 3, probe_size, probe_size), 128.0))
        self.train(was_training)
        if out.shape[-1] < 1 or probe_size % out.shape[-1]:
            raise ValueError(
                f'probe of {probe_size} px gave a {out.shape[-1]}-wide '
                'grid: choose a probe_size divisible by the stride')
        self.stride = probe_size // out.shape[-1]
        self.out_channels = out.shape[1]

    def train(self, mode: bool = True) -> 'nn.Module':
        """A frozen extractor stays in eval mode (BN statistics fixed)."""
        return super().train(mode and not self.frozen)

    def normalize(self, img: Tensor) -> Tensor:
        """``[0, 255]`` RGB -> backbone input."""
        if img.dim() != 4 or img.shape[1] != 3:
            raise ValueError('img must be B x 3 x H x W RGB, got shape '
                             f'{tuple(img.shape)}')
        img = img.to(self.mean.dtype) if not img.is_floating_point() else img
        return (img / 255.0 - self.mean.to(img.dtype)) / self.std.to(
            img.dtype)

    @staticmethod
    def _check_grid(feat, where: str) -> Tensor:
        if not isinstance(feat, Tensor) or feat.dim() != 4:
            shape = tuple(feat.shape) if isinstance(feat, Tensor) else type(
                feat)
            raise ValueError(f'{where} must give a B x D x h x w feature '
                             f'grid, got {shape}')
        return feat


@MODELS.register_module()
class TorchvisionExtractor(_FrozenExtractor):
    """A node of any torchvision classification model as feature grid.

    Built with :func:`torchvision.models.get_model` and
    :func:`torchvision.models.feature_extraction.create_feature_extractor`.
    The node must produce a 4-D map (CNN backbones; e.g. ``layer1..4`` of a
    ResNet has stride 4, 8, 16, 32).

    Args:
        name (str): torchvision model name, e.g. ``'resnet50'``.
        layer (str): Module name (its output, e.g. ``'layer2'``) or graph
            node name (see :func:`torchvision.models.feature_extraction.
            get_graph_node_names`).
        weights (str, optional): ``None`` (random) or a local checkpoint of
            the whole classification model (loaded ``weights_only``).
        strict (bool): Strict state-dict loading.
        frozen (bool): No gradients and always eval mode.
        probe_size (int): Side of the probe image measuring ``stride``.
        model_kwargs (dict, optional): Extra ``get_model`` arguments.
        init_cfg (dict, optional): mmengine init config.
    """

    def __init__(self,
                 name: str = 'resnet50',
                 layer: str = 'layer2',
                 weights: Optional[str] = None,
                 strict: bool = True,
                 frozen: bool = True,
                 probe_size: int = 224,
                 model_kwargs: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(IMAGENET_MEAN, IMAGENET_STD, frozen, init_cfg)
        from torchvision.models import get_model, list_models
        from torchvision.models.feature_extraction import (
            create_feature_extractor, get_graph_node_names)
        if name not in list_models():
            raise KeyError(f'unknown torchvision model {name!r}')
        model = get_model(name, weights=None, **(model_kwargs or {}))
        if weights is not None:
            model.load_state_dict(
                load_checkpoint_weights_only(weights), strict=strict)
        nodes = get_graph_node_names(model)[1]
        # A module name (e.g. 'layer2') selects the module's output node.
        if layer not in nodes and not any(
                n.startswith(layer + '.') for n in nodes):
            tops = sorted({n.split('.')[0] for n in nodes})
            raise KeyError(f'{name} has no node or module {layer!r}; top-'
                           f'level names: {tops}')
        self.name, self.layer = name, layer
        self.body = create_feature_extractor(model, return_nodes=[layer])
        self._finish(probe_size)

    def forward(self, img: Tensor) -> Tensor:
        """``B x 3 x H x W`` RGB in [0, 255] -> ``B x D x h x w``."""
        feat = self.body(self.normalize(img))[self.layer]
        return self._check_grid(feat, f'{self.name}.{self.layer}')


@MODELS.register_module()
class TimmExtractor(_FrozenExtractor):
    """Intermediate features of a timm model (CNN or ViT) as feature grid.

    Uses ``model.forward_intermediates(x, indices=[index],
    intermediates_only=True, output_fmt='NCHW')`` (timm >= 1.0), which
    reshapes ViT patch tokens to a grid. Mean/std come from the model's
    ``pretrained_cfg`` (ImageNet if absent). timm is imported lazily; it is
    not a nucseg requirement. Untested in nucseg's CI (timm absent).

    Args:
        name (str): timm model name, e.g. ``'vit_large_patch16_224'``.
        index (int): Block/stage index passed to ``forward_intermediates``
            (negative counts from the end).
        weights (str, optional): ``None`` (random) or a local checkpoint
            of the model (loaded ``weights_only``).
        strict (bool): Strict state-dict loading.
        frozen (bool): No gradients and always eval mode.
        probe_size (int): Side of the probe image measuring ``stride``.
        model_kwargs (dict, optional): Extra ``timm.create_model``
            arguments (e.g. ``img_size``, ``dynamic_img_size=True``).
        init_cfg (dict, optional): mmengine init config.
    """

    def __init__(self,
                 name: str,
                 index: int = -1,
                 weights: Optional[str] = None,
                 strict: bool = True,
                 frozen: bool = True,
                 probe_size: int = 224,
                 model_kwargs: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        try:
            import timm
        except ImportError as err:
            raise ImportError(
                'TimmExtractor needs timm, which is not installed: '
                'pip install timm (or use TorchvisionExtractor)') from err
        model = timm.create_model(
            name, pretrained=False, **(model_kwargs or {}))
        if weights is not None:
            model.load_state_dict(
                load_checkpoint_weights_only(weights), strict=strict)
        if not hasattr(model, 'forward_intermediates'):
            raise ValueError(f'timm model {name!r} has no '
                             'forward_intermediates (needs timm >= 1.0)')
        cfg = getattr(model, 'pretrained_cfg', None) or {}
        super().__init__(
            tuple(cfg.get('mean', IMAGENET_MEAN)),
            tuple(cfg.get('std', IMAGENET_STD)), frozen, init_cfg)
        self.name, self.index = name, index
        self.body = model
        self._finish(probe_size)

    def forward(self, img: Tensor) -> Tensor:
        """``B x 3 x H x W`` RGB in [0, 255] -> ``B x D x h x w``."""
        feats = self.body.forward_intermediates(
            self.normalize(img), indices=[self.index],
            intermediates_only=True, output_fmt='NCHW')
        return self._check_grid(feats[-1], f'{self.name}[{self.index}]')
