# CPU-sized AMA-SAM on synthetic data: a tiny random-weight SAM (no
# download), 256 px inputs, primary synthetic H&E domain `he_kumar` plus
# two auxiliary domains (`he_tnbc`, `he_cryo`). Make the data with
#   python tools/misc/make_synthetic.py --out data/synthetic/<domain> \
#       --domain <domain> --num 64 --size 256 --seed 0
# It exercises every AMA-SAM part (adapters, CGRL + discriminator, SPGen,
# HR-Decoder) in minutes on a laptop; the numbers mean nothing about SAM.
_base_ = [
    '../_base_/models/ama_sam_vit_b.py', '../_base_/default_runtime.py',
    '../_base_/datasets/sam_pipelines.py'
]
sam_checkpoint = None
sam_image_size = 256
model = dict(
    data_preprocessor=dict(size=(sam_image_size, sam_image_size)),
    backbone=dict(
        arch='tiny', image_size=sam_image_size, checkpoint=None,
        adapter=dict(bottleneck=16),
        # At this tiny size SAM's own attention is the fastest on CPU.
        attn_impl='native'),
    decode_head=dict(image_size=sam_image_size, checkpoint=None),
    discriminator=dict(width=32, num_convs=2))
train_pipeline = [
    dict(type='LoadNucleiImageFromFile'),
    dict(type='LoadInstanceAnnotations'),
    dict(type='Resize', scale=(sam_image_size, sam_image_size),
         keep_ratio=False),
    dict(type='RandomFlipRot90'),
    dict(type='HEDStainJitter', alpha=0.05, beta=0.02),
    dict(type='GenerateNucleiTarget', mode='binary'),
    dict(type='PackNucleiInputs'),
]
test_pipeline = [
    dict(type='LoadNucleiImageFromFile'),
    dict(type='Resize', scale=(sam_image_size, sam_image_size),
         keep_ratio=False),
    dict(type='LoadInstanceAnnotations'),
    dict(type='GenerateNucleiTarget', mode='binary'),
    dict(type='PackNucleiInputs'),
]
dataset_type = 'NucleiDataset'
synth_root = 'data/synthetic'
train_dataloader = dict(
    batch_size=4,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type='MultiDomainDataset',
        primary='he_kumar',
        datasets=[
            dict(type=dataset_type, data_root=f'{synth_root}/he_kumar',
                 split='train', pipeline=train_pipeline),
            dict(type=dataset_type, data_root=f'{synth_root}/he_tnbc',
                 split=None, pipeline=train_pipeline),
            dict(type=dataset_type, data_root=f'{synth_root}/he_cryo',
                 split=None, pipeline=train_pipeline),
        ]))
val_dataloader = dict(
    batch_size=1,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=f'{synth_root}/he_kumar',
                 split='val', test_mode=True, pipeline=test_pipeline))
test_dataloader = dict(
    batch_size=1,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=f'{synth_root}/he_kumar',
                 split='test', test_mode=True, pipeline=test_pipeline))
optimizer = dict(type='Adam', lr=1e-3, betas=(0.9, 0.999), weight_decay=0)
optim_wrapper = dict(type='OptimWrapper', optimizer=optimizer)
param_scheduler = [
    dict(type='ExponentialLR', gamma=0.995, by_epoch=False, begin=0,
         end=200)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=200, val_interval=100)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=10, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=100,
                    max_keep_ckpts=2, save_best='aji', rule='greater'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
log_processor = dict(by_epoch=False)
custom_hooks = [
    dict(type='DomainSizesHook'),
    dict(type='GRLLambdaHook', lambd=1.0, schedule='constant'),
    dict(type='DiscriminatorAccuracyHook'),
    dict(type='InstanceOverlayHook', max_images=16),
]
