# CyC-PDAM Sec. 3.5: SGD lr 0.002, momentum 0.9, weight decay 1e-3, linear
# warm-up over 500 iterations, x0.1 at 3/4 of training; 24k iterations as
# the authors' config (MAX_ITER 24000), one source + one target image each.
# Biases: lr x2 and no weight decay (maskrcnn-benchmark defaults the authors
# train with).
max_iters = 24000
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.002, momentum=0.9, weight_decay=1e-3),
    paramwise_cfg=dict(bias_lr_mult=2.0, bias_decay_mult=0.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=1.0 / 3, by_epoch=False, begin=0,
         end=500),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters,
         milestones=[max_iters * 3 // 4], gamma=0.1),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters,
                 val_interval=2400)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=20, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=2400,
                    max_keep_ckpts=3, save_best='aji', rule='greater'),
    sampler_seed=dict(type='DistSamplerSeedHook'))
