# Self-ensembling UDA (Li et al., COMPAY 2021, Table 1): TNBC (labelled
# source) -> TCIA-STAD (unlabelled target), U-Net + entropy + rotation
# self-ensembling + output-space discriminator + reconstructor, dense CRF
# at test time; 500 epochs of one source and one target 256 px crop per
# iteration. Data: see configs/selfens_uda/README.md (converters and the
# seeded 80/10/10 splits).
_base_ = [
    '../_base_/models/selfens_uda_unet.py',
    '../_base_/datasets/selfens_uda_he.py', '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_selfens_500e.py'
]
source_root = 'data/tnbc'
target_root = 'data/tcia_stad'
# One epoch = one pass over the source training split
# (TNBC: 50 images -> 40/5/5).
iters_per_epoch = 40
source_pipeline = {{_base_.source_pipeline}}
target_pipeline = {{_base_.target_pipeline}}
train_dataloader = dict(dataset=dict(datasets=[
    dict(type='NucleiDataset', data_root=source_root, split='train',
         domain='source', pipeline=source_pipeline),
    dict(type='NucleiDataset', data_root=target_root, split='train',
         domain='target', require_labels=False, pipeline=target_pipeline),
]))
val_dataloader = dict(dataset=dict(data_root=target_root))
test_dataloader = dict(dataset=dict(data_root=target_root))
train_cfg = dict(
    max_iters=500 * iters_per_epoch, val_interval=10 * iters_per_epoch)
default_hooks = dict(checkpoint=dict(interval=10 * iters_per_epoch))
custom_hooks = [
    # lambda(E) = exp(-5 (1 - min(E, 30)/30)^2), E in epochs (Eq. 5)
    dict(type='ConsistencyRampHook', peak=30, scale=1.0,
         iters_per_epoch=iters_per_epoch),
    dict(type='InstanceOverlayHook', max_images=16),
    dict(type='NonFiniteLossHook'),
]
