# MoNuSeg 2018 (Kumar et al.), converted with
#   python tools/dataset_converters/monuseg.py MoNuSeg_Training data/monuseg
#   python tools/dataset_converters/monuseg.py MoNuSegTestData data/monuseg \
#       --split test
# 1000x1000 H&E tiles at 40x; training crops of 256 px, sliding-window
# inference on the full tiles.
_base_ = ['./nuclei_pipelines.py']
dataset_type = 'NucleiDataset'
data_root = 'data/monuseg'
train_pipeline = {{_base_.train_pipeline}}
test_pipeline = {{_base_.test_pipeline}}
train_dataloader = dict(
    batch_size=8,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='train',
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='test',
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
# Tiled inference (tools/infer.py, nucseg.apis): 40x H&E, 0.25 um/px;
# 1024 px tiles overlapping by 128 px (> 2x the largest nuclei).
infer_cfg = dict(mpp=0.25, tile_size=1024, overlap=128, nucleus_diameter=24)
