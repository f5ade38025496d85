# CPU-sized PDAM for the synthetic CyC-PDAM chain (run in the test suite):
# every PDAM part (GN ResNet-18 with 8 base channels, 16-channel FPN,
# semantic branch, three discriminators, task re-weighting, alpha_da hook)
# at 64 px, 20 iterations. Source = synthetic `fluo` translated by the tiny
# CycleGAN and inpainted (data/synthetic/fluo_to_he_inp); target = the
# synthetic `he_kumar` images (labels only used for testing).
_base_ = ['./pdam_r101-gn_1xb1+1-24k_bbbc039-to-kumar-256.py']
crop_size = 64
max_iters = 20
norm_cfg = dict(type='GN', num_groups=4, requires_grad=True)
source_root = 'data/synthetic/fluo_to_he_inp'
target_root = 'data/synthetic/he_kumar'
model = dict(
    backbone=dict(depth=18, base_channels=8, norm_cfg=norm_cfg,
                  init_cfg=None),
    neck=dict(in_channels=[8, 16, 32, 64], out_channels=16,
              norm_cfg=norm_cfg),
    rpn_head=dict(
        in_channels=16, feat_channels=16,
        # nuclei of 8-16 px: anchors of 8 px at P2
        anchor_generator=dict(scales=[2])),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=16),
        bbox_head=dict(in_channels=16, fc_out_channels=64),
        mask_roi_extractor=dict(out_channels=16),
        mask_head=dict(in_channels=16, conv_out_channels=16,
                       norm_cfg=norm_cfg)),
    semantic_head=dict(in_channels=16, inner_channels=16,
                       norm_cfg=norm_cfg),
    img_discriminator=dict(in_channels=16, channels=(16, 32, 32)),
    sem_discriminator=dict(channels=(8, 16, 16, 32)),
    ins_discriminator=dict(in_channels=64, hidden=(64, 16)),
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=200, max_per_img=100),
        rcnn=dict(sampler=dict(num=64))),
    test_cfg=dict(
        rpn=dict(nms_pre=200, max_per_img=200),
        rcnn=dict(max_per_img=50)))
source_pipeline = [
    dict(type='LoadNucleiImageFromFile'),
    dict(type='LoadInstanceAnnotations'),
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
train_dataloader = dict(
    num_workers=0,
    persistent_workers=False,
    dataset=dict(datasets=[
        dict(type='NucleiDataset', data_root=source_root, split='train',
             domain='source', pipeline=source_pipeline),
        dict(type='NucleiDataset', data_root=target_root, split='train',
             domain='target', require_labels=False,
             pipeline=target_pipeline),
    ]))
val_dataloader = dict(
    num_workers=0, persistent_workers=False,
    dataset=dict(data_root=source_root))
test_dataloader = dict(
    num_workers=0, persistent_workers=False,
    dataset=dict(data_root=target_root))
optim_wrapper = dict(optimizer=dict(lr=0.01))
param_scheduler = [
    dict(type='LinearLR', start_factor=1.0 / 3, by_epoch=False, begin=0,
         end=5),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters,
         milestones=[max_iters * 3 // 4], gamma=0.1),
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(
    logger=dict(interval=5),
    checkpoint=dict(interval=10, max_keep_ckpts=2))
