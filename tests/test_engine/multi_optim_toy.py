"""A two-optimizer toy GAN and data set for the multi-optimizer tests."""
import torch
import torch.nn.functional as F
from mmengine.dataset import BaseDataset
from torch import nn

from nucseg.models.base_models import MultiOptimModel
from nucseg.registry import DATASETS, MODELS

DIM = 4


@MODELS.register_module(force=True)
class ToyMultiOptimGAN(MultiOptimModel):
    """LSGAN on 4-d vectors: G step (D frozen), then D step."""

    optim_keys = ('generator', 'discriminator')

    def __init__(self, step_intervals=None, step_begins=None):
        super().__init__(
            data_preprocessor=dict(type='BaseDataPreprocessor'),
            step_intervals=step_intervals,
            step_begins=step_begins)
        self.generator = nn.Sequential(nn.Linear(DIM, 8), nn.Tanh(),
                                       nn.Linear(8, DIM))
        self.discriminator = nn.Sequential(nn.Linear(DIM, 8), nn.ReLU(),
                                           nn.Linear(8, 1))

    def forward(self, inputs, data_samples=None, mode='tensor'):
        if mode == 'loss':
            raise self._loss_mode_error()
        x = torch.stack(list(inputs)) if isinstance(inputs,
                                                    (list,
                                                     tuple)) else inputs
        return self.generator(x)

    def train_step(self, data, optim_wrapper):
        self.check_optim_wrapper(optim_wrapper)
        data = self.data_preprocessor(data, True)
        real = torch.stack(list(data['inputs']))
        noise = real.flip(1) * 0.5
        logs, fake = [], {}
        if self.should_step('generator'):

            def g_losses():
                fake['x'] = self.generator(noise)
                with self.frozen('discriminator') as disc:
                    pred = disc(fake['x'])
                return dict(loss_g=F.mse_loss(pred, torch.ones_like(pred)))

            logs.append(self.update(optim_wrapper, 'generator', g_losses))
        else:
            with torch.no_grad():
                fake['x'] = self.generator(noise)

        def d_losses():
            both = self.discriminator(torch.cat([real, fake['x'].detach()]))
            target = torch.cat([torch.ones(len(real), 1),
                                torch.zeros(len(real), 1)])
            return dict(loss_d=F.mse_loss(both, target))

        logs.append(self.update(optim_wrapper, 'discriminator', d_losses))
        return self.merge_log_vars(*logs)


@DATASETS.register_module(force=True)
class ToyVectorDataset(BaseDataset):
    """``num`` seeded random 4-d vectors (``inputs`` only)."""

    def __init__(self, num=16, pipeline=()):
        self.num = num
        super().__init__(pipeline=list(pipeline), serialize_data=False)

    def load_data_list(self):
        g = torch.Generator().manual_seed(0)
        return [dict(inputs=torch.randn(DIM, generator=g))
                for _ in range(self.num)]


def toy_config(work_dir, max_iters=4, interval=2):
    """A runner config for the toy (per-key optimizers and schedules)."""
    return dict(
        default_scope='nucseg',
        work_dir=str(work_dir),
        model=dict(type='ToyMultiOptimGAN'),
        train_dataloader=dict(
            batch_size=2, num_workers=0,
            sampler=dict(type='InfiniteSampler', shuffle=True),
            dataset=dict(type='ToyVectorDataset', num=16)),
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=max_iters),
        optim_wrapper=dict(
            constructor='MultiOptimWrapperConstructor',
            generator=dict(optimizer=dict(type='Adam', lr=1e-2,
                                          betas=(0.5, 0.999))),
            discriminator=dict(optimizer=dict(type='SGD', lr=1e-2,
                                              momentum=0.9))),
        param_scheduler=dict(
            generator=[dict(type='LinearLR', start_factor=1.0,
                            end_factor=0.1, by_epoch=False, begin=0,
                            end=max_iters)],
            discriminator=[dict(type='MultiStepLR', milestones=[3],
                                gamma=0.1, by_epoch=False)]),
        model_wrapper_cfg=dict(type='MMSeparateDistributedDataParallel'),
        env_cfg=dict(dist_cfg=dict(backend='gloo')),
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', by_epoch=False,
                            interval=interval),
            logger=dict(type='LoggerHook', interval=1)),
        log_processor=dict(by_epoch=False),
        randomness=dict(seed=0))
