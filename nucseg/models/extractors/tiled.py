"""Overlapping-tile feature extraction with averaged stitching.

SPROUT (Sec. 3.1) partitions an image into ``n`` overlapping ``p x p``
patches with stride ``s`` (128 and 64 in its experiments), encodes each
patch with a frozen backbone and stitches the patch features into one
global ``h x w x d`` map. :class:`TiledExtractor` does this for any
backbone that maps ``B x 3 x t x t`` RGB (``[0, 255]``) to a ``B x D x n x
n`` grid, e.g. :class:`~nucseg.models.extractors.TorchvisionExtractor` or a
SAM image encoder (with ``input_size=1024``).

Geometry: a tile of ``tile`` pixels (optionally resized to ``input_size``)
gives ``n x n`` cells, so one cell covers ``stride = tile / n`` input pixels
(an integer, and ``tile_stride`` must be a multiple of it, so that the tile
grids align). The image is padded at the bottom/right until tiles at
``0, tile_stride, 2 tile_stride, ...`` cover it (an image smaller than a
tile is padded to one tile); every cell's feature is the mean over the
tiles containing it; the grid is cropped to ``ceil(H / stride) x ceil(W /
stride)`` cells.
"""
import math
from typing import List, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor, nn

from nucseg.registry import MODELS

__all__ = ['TiledExtractor', 'tile_origins']


def tile_origins(size: int, tile: int, tile_stride: int) -> List[int]:
    """Tile start positions covering ``size`` pixels (after padding).

    Returns ``0, s, 2s, ...`` up to the first tile reaching ``size``.
    """
    n = 1 if size <= tile else 1 + math.ceil((size - tile) / tile_stride)
    return [i * tile_stride for i in range(n)]


@MODELS.register_module()
class TiledExtractor(BaseModule):
    """Run a feature extractor on overlapping tiles and average-stitch.

    Interface of nucseg feature extractors: ``forward(img)`` with ``img``
    ``B x 3 x H x W`` float RGB in ``[0, 255]`` returns ``B x D x h x w``;
    attributes ``stride`` (input pixels per cell) and ``out_channels``
    (``D``, if the backbone exposes it).

    Args:
        backbone (dict | nn.Module): Config for ``MODELS`` or a module,
            ``B x 3 x t x t -> B x D x n x n``. Its ``stride`` attribute,
            if present, gives ``n = t / stride``; otherwise one probe
            forward pass measures ``n``.
        tile (int): Tile side in input pixels (SPROUT: 128).
        tile_stride (int): Distance between tile origins (SPROUT: 64).
        input_size (int, optional): Resize each tile (bilinear) to this
            side before the backbone (e.g. 1024 for SAM's encoder).
        pad_mode (str): ``'reflect'``, ``'replicate'`` or ``'constant'``
            (with ``pad_value``) for the bottom/right padding. ``'reflect'``
            falls back to ``'replicate'`` when the image is too small.
        pad_value (float): Constant padding value (255: white glass).
        tiles_per_batch (int): Tiles per backbone call (times ``B``).
        init_cfg (dict, optional): mmengine init config.
    """

    def __init__(self,
                 backbone: Union[dict, nn.Module],
                 tile: int = 128,
                 tile_stride: int = 64,
                 input_size: Optional[int] = None,
                 pad_mode: str = 'reflect',
                 pad_value: float = 255.0,
                 tiles_per_batch: int = 16,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if tile < 1 or tile_stride < 1 or tile_stride > tile:
            raise ValueError('need 1 <= tile_stride <= tile, got tile='
                             f'{tile}, tile_stride={tile_stride}')
        if pad_mode not in ('reflect', 'replicate', 'constant'):
            raise ValueError(f'unknown pad_mode {pad_mode!r}')
        if tiles_per_batch < 1:
            raise ValueError('tiles_per_batch must be >= 1')
        self.backbone = (MODELS.build(backbone)
                         if isinstance(backbone, dict) else backbone)
        self.tile, self.tile_stride = int(tile), int(tile_stride)
        self.input_size = int(input_size) if input_size else None
        self.pad_mode, self.pad_value = pad_mode, float(pad_value)
        self.tiles_per_batch = int(tiles_per_batch)
        size_in = self.input_size or self.tile
        bb_stride = getattr(self.backbone, 'stride', None)
        if isinstance(bb_stride, int) and size_in % bb_stride == 0:
            cells = size_in // bb_stride
        else:
            cells = self._probe(size_in)
        if self.tile % cells:
            raise ValueError(
                f'a {self.tile}-px tile gives {cells} cells, which do not '
                'divide it: choose tile/input_size to match the backbone '
                'stride')
        self.cells = cells
        self.stride = self.tile // cells
        if self.tile_stride % self.stride:
            raise ValueError(
                f'tile_stride ({self.tile_stride}) must be a multiple of the '
                f'feature cell ({self.stride} px) so that tiles align')
        if hasattr(self.backbone, 'out_channels'):
            self.out_channels = self.backbone.out_channels

    def _probe(self, size_in: int) -> int:
        """Cells per tile side, from one forward pass of a grey tile."""
        ref = next(iter(self.backbone.parameters()), None)
        kw = dict(device=ref.device) if ref is not None else {}
        with torch.no_grad():
            out = self.backbone(
                torch.full((1, 3, size_in, size_in), 128.0, **kw))
        if out.dim() != 4 or out.shape[-1] != out.shape[-2]:
            raise ValueError('backbone must return B x D x n x n for a '
                             f'square tile, got {tuple(out.shape)}')
        return int(out.shape[-1])

    def overlap_counts(self, height: int, width: int,
                       device: Optional[torch.device] = None) -> Tensor:
        """``h x w`` number of tiles covering each output cell."""
        counts = []
        for size in (height, width):
            cnt = torch.zeros(self._padded(size) // self.stride,
                              device=device)
            for o in tile_origins(size, self.tile, self.tile_stride):
                cnt[o // self.stride:o // self.stride + self.cells] += 1
            counts.append(cnt[:math.ceil(size / self.stride)])
        return counts[0][:, None] * counts[1][None, :]

    def _padded(self, size: int) -> int:
        return tile_origins(size, self.tile, self.tile_stride)[-1] + self.tile

    def _pad(self, img: Tensor) -> Tuple[Tensor, int, int]:
        h, w = img.shape[-2:]
        ph, pw = self._padded(h) - h, self._padded(w) - w
        if ph == 0 and pw == 0:
            return img, h, w
        mode = self.pad_mode
        if mode == 'reflect' and (ph >= h or pw >= w):
            mode = 'replicate'
        if mode == 'constant':
            img = F.pad(img, (0, pw, 0, ph), value=self.pad_value)
        else:
            img = F.pad(img, (0, pw, 0, ph), mode=mode)
        return img, h, w

    def _encode(self, tiles: Tensor) -> Tensor:
        if self.input_size and self.input_size != self.tile:
            tiles = F.interpolate(
                tiles, size=(self.input_size, self.input_size),
                mode='bilinear', align_corners=False)
        feats = self.backbone(tiles)
        if (feats.dim() != 4 or feats.shape[0] != tiles.shape[0]
                or tuple(feats.shape[-2:]) != (self.cells, self.cells)):
            raise ValueError(
                f'backbone returned {tuple(feats.shape)} for tiles '
                f'{tuple(tiles.shape)}; expected N x D x {self.cells} x '
                f'{self.cells}')
        return feats

    def forward(self, img: Tensor) -> Tensor:
        """Tiled features.

        Args:
            img (Tensor): ``B x 3 x H x W`` float RGB in ``[0, 255]``.

        Returns:
            Tensor: ``B x D x ceil(H/stride) x ceil(W/stride)``.
        """
        if img.dim() != 4 or img.shape[1] != 3:
            raise ValueError('img must be B x 3 x H x W RGB, got shape '
                             f'{tuple(img.shape)}')
        if not img.is_floating_point():
            img = img.float()
        b = img.shape[0]
        img, h, w = self._pad(img)
        t, c, st = self.tile, self.cells, self.stride
        origins = [(y, x)
                   for y in tile_origins(h, t, self.tile_stride)
                   for x in tile_origins(w, t, self.tile_stride)]
        acc = None
        for i in range(0, len(origins), self.tiles_per_batch):
            chunk = origins[i:i + self.tiles_per_batch]
            tiles = torch.cat(
                [img[:, :, y:y + t, x:x + t] for y, x in chunk])
            feats = self._encode(tiles)
            if acc is None:
                acc = feats.new_zeros(b, feats.shape[1],
                                      img.shape[-2] // st,
                                      img.shape[-1] // st)
            for k, (y, x) in enumerate(chunk):
                acc[:, :, y // st:y // st + c, x // st:x // st + c] += \
                    feats[k * b:(k + 1) * b]
        hc, wc = math.ceil(h / st), math.ceil(w / st)
        counts = self.overlap_counts(h, w, device=acc.device)
        return acc[:, :, :hc, :wc] / counts.to(acc.dtype)
