# U-Net with a three-class (background / interior / boundary) head and
# marker-controlled watershed instance post-processing.
norm_cfg = dict(type='BN', requires_grad=True)  # SyncBN for multi-GPU
data_preprocessor = dict(
    type='SegDataPreProcessor',
    # ImageNet statistics in RGB order; nucseg pipelines load RGB.
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=False,
    pad_val=0,
    seg_pad_val=255,
    size_divisor=16)
model = dict(
    type='NucleiEncoderDecoder',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='UNet',
        in_channels=3,
        base_channels=16,
        num_stages=5,
        strides=(1, 1, 1, 1, 1),
        enc_num_convs=(2, 2, 2, 2, 2),
        dec_num_convs=(2, 2, 2, 2),
        downsamples=(True, True, True, True),
        enc_dilations=(1, 1, 1, 1, 1),
        dec_dilations=(1, 1, 1, 1),
        norm_cfg=norm_cfg,
        act_cfg=dict(type='ReLU'),
        upsample_cfg=dict(type='InterpConv'),
        norm_eval=False),
    decode_head=dict(
        type='FCNHead',
        in_channels=16,
        in_index=4,
        channels=16,
        num_convs=2,
        concat_input=False,
        # Channel dropout on 16 channels stalls training on CPU-sized
        # models (seed-dependent collapse to background); off.
        dropout_ratio=0.0,
        num_classes=3,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=[
            dict(
                type='CrossEntropyLoss',
                use_sigmoid=False,
                class_weight=[1.0, 1.0, 2.0],
                loss_weight=1.0,
                loss_name='loss_ce'),
        ]),
    postprocessor=dict(type='ContourWatershed'),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
