# PDAM data (CyC-PDAM Sec. 4.2): every batch holds one synthesised,
# labelled source crop (CycleGAN + nuclei inpainting of BBBC039, written by
# tools/cyc_pdam/translate.py and inpaint.py) and one unlabelled target
# crop, 256 x 256. Validation on the synthesised BBBC039 validation images
# (the paper tunes test settings there), test on the target test images.
crop_size = 256
dataset_type = 'NucleiDataset'
source_root = 'data/bbbc039_to_kumar_inp'
target_root = 'data/kumar'
source_pipeline = [
    dict(type='LoadNucleiImageFromFile'),
    dict(type='LoadInstanceAnnotations'),
    dict(type='RandomResize', scale=(crop_size, crop_size),
         ratio_range=(0.75, 1.25), keep_ratio=True),
    dict(type='RandomInstanceCrop', crop_size=crop_size, fg_prob=1.0,
         pad_val=255),
    dict(type='RandomFlipRot90'),
    dict(type='GenerateInstanceTargets'),
    dict(type='PackNucleiInputs'),
]
target_pipeline = [
    dict(type='LoadNucleiImageFromFile'),
    dict(type='RandomInstanceCrop', crop_size=crop_size, pad_val=255),
    dict(type='RandomFlipRot90'),
    dict(type='PackNucleiInputs'),
]
test_pipeline = [
    dict(type='LoadNucleiImageFromFile'),
    dict(type='LoadInstanceAnnotations'),
    dict(type='PackNucleiInputs'),
]
train_dataloader = dict(
    batch_size=2,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='MultiDomainSampler', batch_size=2,
                 domain_ratio=[1, 1]),
    dataset=dict(
        type='MultiDomainDataset',
        primary=0,  # the labelled source domain
        datasets=[
            dict(type=dataset_type, data_root=source_root, split='train',
                 domain='source', pipeline=source_pipeline),
            dict(type=dataset_type, data_root=target_root, split='train',
                 domain='target', require_labels=False,
                 pipeline=target_pipeline),
        ]))
val_dataloader = dict(
    batch_size=1,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=source_root, split='val',
                 test_mode=True, pipeline=test_pipeline))
test_dataloader = dict(
    batch_size=1,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=target_root, split='test',
                 test_mode=True, pipeline=test_pipeline))
# AJI and object F1 (InstanceMetric), pixel F1 of the painted instances
val_evaluator = [
    dict(type='InstanceMetric', metrics=('aji', 'obj_f1', 'pq', 'dice')),
    dict(type='SemanticMetric', prefix='pixel', pred_source='instance',
         metrics=('f1', 'dice')),
]
test_evaluator = val_evaluator
