# AMA-SAM (Sec. 3.5): Adam, 30 epochs, ExponentialLR (gamma 0.98 per
# epoch). The paper scales the learning rate inversely with the number of
# training images (2e-4 for 40 images); method configs set
# `optim_wrapper.optimizer.lr = 2e-4 * 40 / <their image count>`.
optimizer = dict(type='Adam', lr=2e-4, betas=(0.9, 0.999), weight_decay=0)
optim_wrapper = dict(type='OptimWrapper', optimizer=optimizer)
param_scheduler = [
    dict(type='ExponentialLR', gamma=0.98, by_epoch=True, begin=0, end=30)
]
# No model selection on the test split: evaluate once, after training.
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=30, val_interval=30)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=10, log_metric_by_epoch=True),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=True, interval=5,
                    max_keep_ckpts=2, save_last=True),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
