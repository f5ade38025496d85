# Synthetic H&E nuclei written by
#   python tools/misc/make_synthetic.py --out data/synthetic/he_kumar \
#       --domain he_kumar --num 64 --size 256 --seed 0
dataset_type = 'NucleiDataset'
data_root = 'data/synthetic/he_kumar'
crop_size = (256, 256)
train_pipeline = [
    dict(type='LoadNucleiImageFromFile'),
    dict(type='LoadInstanceAnnotations'),
    dict(type='RandomInstanceCrop', crop_size=crop_size, fg_prob=0.5),
    dict(type='RandomFlipRot90'),
    dict(type='HEDStainJitter', alpha=0.05, beta=0.02),
    dict(type='GenerateNucleiTarget', mode='contour'),
    dict(type='PackNucleiInputs'),
]
test_pipeline = [
    dict(type='LoadNucleiImageFromFile'),
    dict(type='LoadInstanceAnnotations'),
    dict(type='GenerateNucleiTarget', mode='contour'),
    dict(type='PackNucleiInputs'),
]
train_dataloader = dict(
    batch_size=4,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='train',
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='val',
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = dict(
    batch_size=1,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='test',
        test_mode=True,
        pipeline=test_pipeline))
val_evaluator = [
    dict(type='InstanceMetric'),
    dict(type='SemanticMetric', prefix='pixel'),
]
test_evaluator = val_evaluator
