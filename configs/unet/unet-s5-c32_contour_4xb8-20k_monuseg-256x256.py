_base_ = [
    '../_base_/models/unet_contour.py', '../_base_/datasets/monuseg.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_20k.py'
]
norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    backbone=dict(base_channels=32, norm_cfg=norm_cfg),
    decode_head=dict(in_channels=32, channels=32, norm_cfg=norm_cfg),
    # 1000x1000 tiles: sliding windows of the training crop size.
    test_cfg=dict(mode='slide', crop_size=(256, 256), stride=(192, 192)))
