# 500 epochs (Sec. 3) of one source image per iteration; an epoch is one
# pass over the source training split. Configs set `iters_per_epoch` (the
# number of source training images) and derive max_iters.
iters_per_epoch = 40
max_epochs = 500
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=iters_per_epoch * max_epochs,
    val_interval=iters_per_epoch * 10)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    # No learning-rate schedule (constant Adam rates).
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False,
                    interval=iters_per_epoch * 10, max_keep_ckpts=3,
                    save_best='aji', rule='greater'),
    sampler_seed=dict(type='DistSamplerSeedHook'))
# Configs add the lambda(E) hook: Gaussian ramp-up to k = 1 at e = 30
# epochs (Eq. 5), evaluated per iteration in fractional epochs:
#   custom_hooks = [dict(type='ConsistencyRampHook', peak=30, scale=1.0,
#                        iters_per_epoch=iters_per_epoch), ...]
