# Synthetic H&E nuclei written by
#   python tools/misc/make_synthetic.py --out data/synthetic/he_kumar \
#       --domain he_kumar --num 64 --size 256 --seed 0
_base_ = ['./nuclei_pipelines.py']
dataset_type = 'NucleiDataset'
data_root = 'data/synthetic/he_kumar'
train_pipeline = {{_base_.train_pipeline}}
test_pipeline = {{_base_.test_pipeline}}
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
# Tiled inference (tools/infer.py, nucseg.apis): the synthetic H&E tiles
# stand for 20x (0.5 um/px; nuclei ~16 px across, half of 40x MoNuSeg's).
infer_cfg = dict(mpp=0.5, tile_size=512, overlap=64, nucleus_diameter=16)
