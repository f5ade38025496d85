# nnU-Net's trainer as SAMDA uses it: SGD (momentum 0.99, Nesterov),
# weight decay 3e-5, poly learning rate (power 0.9), gradient norm clipped
# at 12; one epoch = 250 iterations. Step 1: 100 epochs at lr 1e-2 (the
# step configs override iterations and lr for steps 2 and 3). Only
# trainable parameters reach the optimizer.
iters_per_epoch = 250
optim_wrapper = dict(
    type='OptimWrapper',
    constructor='TrainableParamsOptimWrapperConstructor',
    optimizer=dict(
        type='SGD', lr=1e-2, momentum=0.99, nesterov=True,
        weight_decay=3e-5),
    clip_grad=dict(max_norm=12, norm_type=2))
param_scheduler = [
    dict(type='PolyLR', power=0.9, eta_min=0.0, by_epoch=False, begin=0,
         end=100 * iters_per_epoch)
]
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=100 * iters_per_epoch,
    val_interval=10 * iters_per_epoch)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # The chain loads each step's last checkpoint (no model selection on
    # the target test set).
    checkpoint=dict(type='CheckpointHook', by_epoch=False,
                    interval=10 * iters_per_epoch, max_keep_ckpts=2),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
