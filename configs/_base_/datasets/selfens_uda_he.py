# Self-ensembling UDA data: every batch holds one labelled source crop and
# one unlabelled target crop (CellSegUDA: batch 1 per domain). Splits are
# the 80/10/10 ones written by the converters / make_splits.py (seed 0).
# Validation on the target validation split (as CellSegUDA, which keeps the
# checkpoint of the best target-validation score), test on the target test
# split.
crop_size = 256
dataset_type = 'NucleiDataset'
source_root = 'data/tnbc'
target_root = 'data/kirc'
source_pipeline = [
    dict(type='LoadNucleiImageFromFile'),
    dict(type='LoadInstanceAnnotations'),
    # Images smaller than the crop are padded (white, like glass).
    dict(type='RandomInstanceCrop', crop_size=crop_size, pad_val=255),
    dict(type='GenerateNucleiTarget', mode='binary'),
    dict(type='PackNucleiInputs'),
]
target_pipeline = [
    dict(type='LoadNucleiImageFromFile'),
    dict(type='RandomInstanceCrop', crop_size=crop_size, pad_val=255),
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
    dataset=dict(type=dataset_type, data_root=target_root, split='val',
                 test_mode=True, pipeline=test_pipeline))
test_dataloader = dict(
    batch_size=1,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=target_root, split='test',
                 test_mode=True, pipeline=test_pipeline))
# The paper's IoU and Dice (of pred_sem_seg, the CRF-refined foreground)
# next to the instance metrics of the watershed instances.
val_evaluator = [
    dict(type='SemanticMetric', metrics=('iou', 'dice')),
    dict(type='InstanceMetric',
         metrics=('aji', 'aji_plus', 'dq', 'sq', 'pq', 'obj_f1')),
]
test_evaluator = val_evaluator
