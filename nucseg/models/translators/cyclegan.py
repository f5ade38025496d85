"""CycleGAN (Zhu et al., ICCV 2017): unpaired translation A <-> B.

CyC-PDAM (Liu et al., CVPR 2020, Sec. 3.5) uses it unchanged to turn
annotated fluorescence patches (domain A, intensity-inverted) into H&E-like
patches (domain B); the labels of A stay valid for the synthesised images.
"""
from typing import Dict, List, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.structures import PixelData
from torch import Tensor, nn

from nucseg.models.base_models import MultiOptimModel
from nucseg.registry import MODELS
from nucseg.utils.config_check import check_keys
from .image_pool import ImagePool

__all__ = ['CycleGAN', 'CycleGenerators', 'CycleDiscriminators']

LOSS_WEIGHT_KEYS = ('cycle', 'identity')


class CycleGenerators(nn.Module):
    """``a2b`` and ``b2a`` generators; one forward gives every output the
    generator losses need (one DDP forward per generator step).

    Args:
        generator (dict): Config of one generator (built twice).
    """

    def __init__(self, generator: dict) -> None:
        super().__init__()
        self.a2b = MODELS.build(generator)
        self.b2a = MODELS.build(generator)

    def forward(self, real_a: Tensor, real_b: Tensor,
                identity: bool = True) -> Dict[str, Tensor]:
        """Translations, reconstructions and (optionally) identities.

        Args:
            real_a (Tensor): ``B x 3 x H x W`` images of domain A.
            real_b (Tensor): ``B x 3 x H' x W'`` images of domain B.
            identity (bool): Also compute ``idt_a = b2a(a)`` and
                ``idt_b = a2b(b)``.

        Returns:
            dict[str, Tensor]: ``fake_b``, ``rec_a``, ``fake_a``,
            ``rec_b`` (and ``idt_a``, ``idt_b``), shaped like the inputs.
        """
        out = dict(fake_b=self.a2b(real_a), fake_a=self.b2a(real_b))
        out['rec_a'] = self.b2a(out['fake_b'])
        out['rec_b'] = self.a2b(out['fake_a'])
        if identity:
            out['idt_a'] = self.b2a(real_a)
            out['idt_b'] = self.a2b(real_b)
        return out


class CycleDiscriminators(nn.Module):
    """Discriminators ``a`` (real A vs. fake A) and ``b``.

    Args:
        discriminator (dict): Config of one discriminator (built twice).
    """

    def __init__(self, discriminator: dict) -> None:
        super().__init__()
        self.a = MODELS.build(discriminator)
        self.b = MODELS.build(discriminator)

    def forward(self, img_a: Tensor, img_b: Tensor) -> Tuple[Tensor, Tensor]:
        """``(D_a(img_a), D_b(img_b))`` patch logits."""
        return self.a(img_a), self.b(img_b)


def _lsgan(pred: Tensor, real: bool) -> Tensor:
    return F.mse_loss(pred, torch.full_like(pred, 1.0 if real else 0.0))


@MODELS.register_module()
class CycleGAN(MultiOptimModel):
    """CycleGAN with LSGAN, cycle and identity losses and image pools.

    Each iteration (as the reference implementation):

    1. generator step (discriminators frozen)::

           L_G = LSGAN(D_b(G_a2b(a)), 1) + LSGAN(D_a(G_b2a(b)), 1)
               + w_cyc * (|G_b2a(G_a2b(a)) - a|_1 + |G_a2b(G_b2a(b)) - b|_1)
               + w_cyc * w_idt * (|G_b2a(a) - a|_1 + |G_a2b(b) - b|_1)

    2. discriminator step on the real images and pooled, detached fakes::

           L_D = 0.5 (LSGAN(D_a(a), 1) + LSGAN(D_a(pool_a(fake_a)), 0))
               + 0.5 (LSGAN(D_b(b), 1) + LSGAN(D_b(pool_b(fake_b)), 0))

    with optimizers ``generators`` and ``discriminators`` (an
    ``OptimWrapperDict`` from ``MultiOptimWrapperConstructor``).
    ``step_intervals=dict(generators=k)`` updates the generators every
    ``k`` iterations (the discriminators every iteration).

    Args:
        generator (dict): Generator config (e.g. ``ResnetGenerator``).
        discriminator (dict): Discriminator config (``PatchDiscriminator``).
        loss_weights (dict): ``cycle`` (10) and ``identity`` (0.5, a
            fraction of ``cycle``: identity weight 5).
        pool_size (int): Image pool size (50).
        data_preprocessor (dict, optional): Defaults to
            ``UnpairedDataPreprocessor``.
        step_intervals, step_begins (dict, optional): See
            :class:`~nucseg.models.base_models.MultiOptimModel`.
        init_cfg (dict, optional): mmengine init config.
    """

    optim_keys = ('generators', 'discriminators')

    def __init__(self,
                 generator: dict,
                 discriminator: dict,
                 loss_weights: Optional[dict] = None,
                 pool_size: int = 50,
                 data_preprocessor: Optional[dict] = None,
                 step_intervals: Optional[dict] = None,
                 step_begins: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(
            data_preprocessor=data_preprocessor
            or dict(type='UnpairedDataPreprocessor'),
            step_intervals=step_intervals,
            step_begins=step_begins,
            init_cfg=init_cfg)
        check_keys(loss_weights, LOSS_WEIGHT_KEYS, 'CycleGAN.loss_weights')
        weights = dict(cycle=10.0, identity=0.5)
        weights.update(loss_weights or {})
        if min(weights.values()) < 0:
            raise ValueError(f'CycleGAN.loss_weights must be >= 0, got '
                             f'{weights}')
        self.loss_weights = weights
        self.generators = CycleGenerators(generator)
        self.discriminators = CycleDiscriminators(discriminator)
        self.pools = dict(a=ImagePool(pool_size), b=ImagePool(pool_size))
        #: Detached images of the last training iteration (for
        #: ``TranslationSamplesHook``).
        self.last_outputs: Dict[str, Tensor] = {}

    def train_step(self, data: Union[dict, tuple, list],
                   optim_wrapper) -> Dict[str, Tensor]:
        """Generator step (if scheduled), then discriminator step.

        Returns:
            dict[str, Tensor]: Losses of both steps, their totals
            ``loss_generators`` / ``loss_discriminators`` and ``loss``.
        """
        self.check_optim_wrapper(optim_wrapper)
        data = self.data_preprocessor(data, True)
        real_a, real_b = data['inputs']['img_a'], data['inputs']['img_b']
        w_cyc = self.loss_weights['cycle']
        w_idt = self.loss_weights['identity'] * w_cyc
        out: Dict[str, Tensor] = {}
        logs = []
        if self.should_step('generators'):

            def generator_losses() -> Dict[str, Tensor]:
                out.update(self.generators(real_a, real_b, w_idt > 0))
                with self.frozen('discriminators') as disc:
                    losses = dict(
                        loss_gan_a2b=_lsgan(disc.b(out['fake_b']), True),
                        loss_gan_b2a=_lsgan(disc.a(out['fake_a']), True))
                losses['loss_cycle_a'] = w_cyc * F.l1_loss(
                    out['rec_a'], real_a)
                losses['loss_cycle_b'] = w_cyc * F.l1_loss(
                    out['rec_b'], real_b)
                if w_idt > 0:
                    losses['loss_idt_a'] = w_idt * F.l1_loss(
                        out['idt_a'], real_a)
                    losses['loss_idt_b'] = w_idt * F.l1_loss(
                        out['idt_b'], real_b)
                return losses

            logs.append(
                self.update(optim_wrapper, 'generators', generator_losses))
        else:
            with torch.no_grad():
                out.update(self.generators(real_a, real_b, False))

        def discriminator_losses() -> Dict[str, Tensor]:
            fake_a = self.pools['a'].query(out['fake_a'].detach())
            fake_b = self.pools['b'].query(out['fake_b'].detach())
            n_a, n_b = len(real_a), len(real_b)
            pred_a, pred_b = self.discriminators(
                torch.cat([real_a, fake_a]), torch.cat([real_b, fake_b]))
            return dict(
                loss_d_a=0.5 * (_lsgan(pred_a[:n_a], True) +
                                _lsgan(pred_a[n_a:], False)),
                loss_d_b=0.5 * (_lsgan(pred_b[:n_b], True) +
                                _lsgan(pred_b[n_b:], False)))

        logs.append(
            self.update(optim_wrapper, 'discriminators',
                        discriminator_losses))
        self.last_outputs = dict(
            real_a=real_a.detach(), real_b=real_b.detach(),
            **{k: out[k].detach()
               for k in ('fake_a', 'fake_b', 'rec_a', 'rec_b')})
        return self.merge_log_vars(*logs)

    @torch.no_grad()
    def translate(self, images: Tensor, direction: str = 'a2b') -> Tensor:
        """Translate normalised images (any size; see ``ResnetGenerator``).

        Args:
            images (Tensor): ``B x 3 x H x W`` in ``[-1, 1]``.
            direction (str): ``'a2b'`` or ``'b2a'``.

        Returns:
            Tensor: ``B x 3 x H x W`` in ``[-1, 1]``.
        """
        if direction not in ('a2b', 'b2a'):
            raise ValueError(f"direction must be 'a2b' or 'b2a', got "
                             f'{direction!r}')
        return getattr(self.unwrapped('generators'), direction)(images)

    def forward(self,
                inputs: Dict[str, Tensor],
                data_samples: Optional[List] = None,
                mode: str = 'tensor') -> Union[Dict[str, Tensor], List]:
        """Translate both domains of preprocessed ``inputs``.

        Args:
            inputs (dict[str, Tensor]): ``img_a`` and/or ``img_b``
                (``B x 3 x H x W``, normalised).
            data_samples (list, optional): Needed for ``mode='predict'``.
            mode (str): ``'tensor'`` returns ``{'fake_b': ..., 'fake_a':
                ...}``; ``'predict'`` stores them in the data samples as
                ``fake_b`` / ``fake_a`` (PixelData, ``3 x H x W``).

        Raises:
            RuntimeError: For ``mode='loss'`` (losses live in
                :meth:`train_step`).
        """
        if mode == 'loss':
            raise self._loss_mode_error()
        if mode not in ('tensor', 'predict'):
            raise ValueError(f'unknown mode {mode!r}')
        out = {}
        if 'img_a' in inputs:
            out['fake_b'] = self.translate(inputs['img_a'], 'a2b')
        if 'img_b' in inputs:
            out['fake_a'] = self.translate(inputs['img_b'], 'b2a')
        if mode == 'tensor':
            return out
        if data_samples is None:
            raise ValueError("mode='predict' needs data_samples")
        for i, sample in enumerate(data_samples):
            for key, value in out.items():
                sample.set_field(PixelData(data=value[i]), key)
        return data_samples
