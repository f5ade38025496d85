# AMA-SAM, Table 1 (MoNuSeg primary; TNBC, CryoNuSeg, cpm17 auxiliary).
_base_ = [
    '../_base_/models/ama_sam_vit_b.py',
    '../_base_/datasets/multi_nuclei_he.py', '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_ama_sam_30e.py'
]
# MoNuSeg train 30 + TNBC 50 + CryoNuSeg 30 + cpm17 64 images.
num_train_images = 174
train_dataloader = dict(
    batch_size=2,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type='MultiDomainDataset',
        primary='monuseg',
        datasets=[
            {{_base_.monuseg_train}}, {{_base_.tnbc_all}},
            {{_base_.cryonuseg_all}}, {{_base_.cpm17_all}}
        ]))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset={{_base_.monuseg_test}})
test_dataloader = val_dataloader
log_processor = dict(by_epoch=True)
# Sec. 3.5: 2e-4 for 40 images, inversely proportional to the image count.
optim_wrapper = dict(optimizer=dict(lr=2e-4 * 40 / num_train_images))
custom_hooks = [
    dict(type='DomainSizesHook'),
    dict(type='GRLLambdaHook', lambd=1.0, schedule='constant'),
    dict(type='DiscriminatorAccuracyHook'),
    dict(type='InstanceOverlayHook', max_images=16),
]
