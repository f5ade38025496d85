# SAMDA step 1 on CPU: synthetic EM, source `em` (ssTEM-like) -> target
# `em_fibsem` (FIB-SEM-like), 64 px tiles, a tiny random-weight SAM (no
# download) and a shrunken nnU-Net (5 stages, 4..32 features). Exercises
# the whole three-step chain in minutes; the numbers mean nothing about
# SAM. Make the data with
#   python tools/misc/make_synthetic.py --out data/synthetic/em \
#       --domain em --num 32 --size 64 --seed 0
#   python tools/misc/make_synthetic.py --out data/synthetic/em_fibsem \
#       --domain em_fibsem --num 32 --size 64 --seed 1
# then run  python tools/samda/run_stages.py --preset synth --shots 2
_base_ = [
    '../_base_/models/samda_nnunet_sam_vit_b.py',
    '../_base_/datasets/samda_em.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_samda_nnunet.py',
]
size = 64
patch = (size, size)
model = dict(
    data_preprocessor=dict(sam_size=size),
    unet=dict(patch_size=patch, base_features=4, max_features=32),
    sam_encoder=dict(arch='tiny', image_size=size, checkpoint=None,
                     attn_impl='native'),
    projector=dict(channels=8, out_channels=8),
    test_cfg=dict(_delete_=True, mode='whole'))
source_root = 'data/synthetic/em'
source_train_split = 'train'
target_root = 'data/synthetic/em_fibsem'
target_train_split = 'train'
target_test_split = 'test'
train_pipeline = [
    dict(type='LoadNucleiImageFromFile'),
    dict(type='LoadInstanceAnnotations'),
    dict(type='RandomInstanceCrop', crop_size=patch, fg_prob=0.33),
    dict(type='RandomFlipRot90'),
    dict(type='GenerateNucleiTarget', mode='binary'),
    dict(type='PackNucleiInputs'),
]
unlabelled_pipeline = [
    dict(type='LoadNucleiImageFromFile'),
    dict(type='RandomInstanceCrop', crop_size=patch),
    dict(type='RandomFlipRot90'),
    dict(type='PackNucleiInputs'),
]
train_dataloader = dict(
    batch_size=2,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type='NucleiDataset',
        data_root=source_root,
        split=source_train_split,
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='NucleiDataset',
        data_root=target_root,
        split=target_test_split,
        test_mode=True,
        pipeline={{_base_.test_pipeline}}))
test_dataloader = val_dataloader
iters = 40
param_scheduler = [
    dict(type='PolyLR', power=0.9, eta_min=0.0, by_epoch=False, begin=0,
         end=iters)
]
train_cfg = dict(max_iters=iters, val_interval=iters)
default_hooks = dict(
    logger=dict(interval=5), checkpoint=dict(interval=iters))
