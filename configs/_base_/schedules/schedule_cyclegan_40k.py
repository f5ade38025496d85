# CyC-PDAM Sec. 3.5: lr 1e-4 for the first half of training, then linearly
# to 0. The paper gives no iteration count; 40k iterations of batch 1 is
# this project's choice (see configs/cyc_pdam/README.md).
max_iters = 40000
optim_wrapper = dict(
    constructor='MultiOptimWrapperConstructor',
    generators=dict(
        type='OptimWrapper',
        optimizer=dict(type='Adam', lr=1e-4, betas=(0.5, 0.999))),
    discriminators=dict(
        type='OptimWrapper',
        optimizer=dict(type='Adam', lr=1e-4, betas=(0.5, 0.999))))
# One schedule per optimizer (keys as in optim_wrapper).
param_scheduler = dict(
    generators=[
        dict(type='LinearLR', start_factor=1.0, end_factor=0.0,
             by_epoch=False, begin=max_iters // 2, end=max_iters)
    ],
    discriminators=[
        dict(type='LinearLR', start_factor=1.0, end_factor=0.0,
             by_epoch=False, begin=max_iters // 2, end=max_iters)
    ])
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters)
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=5000,
                    max_keep_ckpts=2),
    sampler_seed=dict(type='DistSamplerSeedHook'))
