"""Perceptual loss of SAMDA step 2 (feature + Gram-matrix style terms).

SAMDA (Wang & Xiao, Eq. 2-5), after Johnson et al. (ECCV 2016): for the
adaptation module's feature maps ``phi_s = phi(s_raw)`` and
``phi_t = phi(t_raw)`` of a source and a target image (``C x H x W``
each),

* ``L_feat = ||phi_s - phi_t||_2^2 / (C H W)`` (Eq. 3), the mean squared
  difference;
* ``G(x)_{ij} = sum_{h,w} phi(x)_{h,w,i} phi(x)_{h,w,j} / (C H W)``
  (Eq. 4), a ``C x C`` Gram matrix;
* ``L_style = ||G(s_raw) - G(t_raw)||_F^2`` (Eq. 5), the squared
  Frobenius distance;
* ``L_perceptual = L_feat + L_style`` (Eq. 2).

Every term is computed per image pair and averaged over the pairs of a
batch.
"""
from typing import Dict

import torch
from torch import Tensor, nn

from nucseg.registry import MODELS

__all__ = ['gram_matrix', 'PerceptualLoss']


def gram_matrix(feat: Tensor) -> Tensor:
    """Gram matrices normalised by ``C * H * W`` (SAMDA Eq. 4).

    Args:
        feat (Tensor): ``(B, C, H, W)`` feature maps.

    Returns:
        Tensor: ``(B, C, C)``; entry ``(i, j)`` is ``sum_hw f_i f_j /
        (C H W)``.
    """
    if feat.dim() != 4:
        raise ValueError(f'gram_matrix expects BxCxHxW, got '
                         f'{tuple(feat.shape)}')
    b, c, h, w = feat.shape
    flat = feat.reshape(b, c, h * w)
    return torch.bmm(flat, flat.transpose(1, 2)) / float(c * h * w)


@MODELS.register_module()
class PerceptualLoss(nn.Module):
    """``feat_weight * L_feat + style_weight * L_style`` (SAMDA Eq. 2-5).

    Args:
        feat_weight (float): Weight of the feature reconstruction term
            (paper: 1).
        style_weight (float): Weight of the style (Gram) term (paper: 1).
        loss_feat_name (str): Key of the feature term in the loss dict.
        loss_style_name (str): Key of the style term.

    Shape:
        - feat_s, feat_t: ``(B, C, H, W)``, pair ``i`` is
          ``(feat_s[i], feat_t[i])``
        - output: dict of two scalars
    """

    def __init__(self,
                 feat_weight: float = 1.0,
                 style_weight: float = 1.0,
                 loss_feat_name: str = 'loss_feat',
                 loss_style_name: str = 'loss_style') -> None:
        super().__init__()
        if feat_weight < 0 or style_weight < 0:
            raise ValueError('PerceptualLoss weights must be >= 0, got '
                             f'{feat_weight}, {style_weight}')
        for name in (loss_feat_name, loss_style_name):
            if not name.startswith('loss_'):
                raise ValueError(f'loss names must start with "loss_" '
                                 f'(mmengine sums only those), got {name!r}')
        self.feat_weight = float(feat_weight)
        self.style_weight = float(style_weight)
        self.loss_feat_name = loss_feat_name
        self.loss_style_name = loss_style_name

    @staticmethod
    def feature_loss(feat_s: Tensor, feat_t: Tensor) -> Tensor:
        """Eq. 3 averaged over pairs: ``mean((feat_s - feat_t)^2)``."""
        return (feat_s - feat_t).pow(2).flatten(1).mean(1).mean()

    @staticmethod
    def style_loss(feat_s: Tensor, feat_t: Tensor) -> Tensor:
        """Eq. 5 averaged over pairs: ``||G_s - G_t||_F^2``."""
        diff = gram_matrix(feat_s) - gram_matrix(feat_t)
        return diff.pow(2).flatten(1).sum(1).mean()

    def forward(self, feat_s: Tensor, feat_t: Tensor) -> Dict[str, Tensor]:
        """The weighted feature and style terms of ``B`` pairs."""
        if feat_s.shape != feat_t.shape or feat_s.dim() != 4:
            raise ValueError(
                'PerceptualLoss needs source and target features of one '
                f'BxCxHxW shape, got {tuple(feat_s.shape)} and '
                f'{tuple(feat_t.shape)}')
        if feat_s.shape[0] == 0:
            raise ValueError('PerceptualLoss got an empty batch of pairs')
        return {
            self.loss_feat_name:
            self.feat_weight * self.feature_loss(feat_s, feat_t),
            self.loss_style_name:
            self.style_weight * self.style_loss(feat_s, feat_t),
        }
