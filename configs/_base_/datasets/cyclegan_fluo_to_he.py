# Unpaired fluorescence (domain A, intensity-inverted as CyC-PDAM Sec. 4.2)
# -> H&E (domain B) crops for CycleGAN. Labels are not needed here; the
# translated set keeps the source labels (tools/cyc_pdam/translate.py).
crop_size = 256
source_root = 'data/bbbc039'
target_root = 'data/kumar'
source_split = 'train'
target_split = 'train'
pipeline_a = [
    dict(type='LoadNucleiImageFromFile'),
    dict(type='InvertIntensity'),
    dict(type='RandomInstanceCrop', crop_size=crop_size, pad_val=255),
    dict(type='RandomFlipRot90'),
    dict(type='PackNucleiInputs'),
]
pipeline_b = [
    dict(type='LoadNucleiImageFromFile'),
    dict(type='RandomInstanceCrop', crop_size=crop_size, pad_val=255),
    dict(type='RandomFlipRot90'),
    dict(type='PackNucleiInputs'),
]
# What tools/cyc_pdam/translate.py applies to every loaded source image.
translate_pipeline = [
    dict(type='InvertIntensity'),
    dict(type='PackNucleiInputs'),
]
train_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type='UnpairedNucleiDataset',
        domain_a=dict(type='NucleiDataset', data_root=source_root,
                      split=source_split, domain='fluorescence',
                      require_labels=False, pipeline=pipeline_a),
        domain_b=dict(type='NucleiDataset', data_root=target_root,
                      split=target_split, domain='he',
                      require_labels=False, pipeline=pipeline_b)))
val_dataloader = None
val_cfg = None
val_evaluator = None
test_dataloader = None
test_cfg = None
test_evaluator = None
