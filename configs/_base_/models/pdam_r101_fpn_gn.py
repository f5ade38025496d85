# PDAM (CyC-PDAM Sec. 3): mmdet Mask R-CNN R-101-FPN with GroupNorm (32
# groups) in backbone, FPN and mask head, a Panoptic-FPN semantic branch
# and image / semantic / instance-level domain discriminators. Every mmdet
# sub-config is built in mmdet's registry (_scope_='mmdet').
# The backbone starts from ImageNet weights of R-101-GN (Detectron, BGR
# input; mmdet's open-mmlab://detectron/resnet101_gn). Nothing is
# downloaded at run time: put
# https://download.openmmlab.com/pretrain/third_party/resnet101_gn-cac0ab98.pth
# into checkpoints/ (configs/cyc_pdam/README.md).
norm_cfg = dict(type='GN', num_groups=32, requires_grad=True)
pretrained = 'checkpoints/resnet101_gn-cac0ab98.pth'
model = dict(
    type='PDAM',
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        _scope_='mmdet',
        # the Detectron GN weights expect BGR (mmdet's gn-all configs):
        # flip nucseg's RGB images
        mean=[103.530, 116.280, 123.675],
        std=[1.0, 1.0, 1.0],
        bgr_to_rgb=True,
        pad_size_divisor=32,
        pad_mask=False),
    backbone=dict(
        type='ResNet',
        _scope_='mmdet',
        depth=101,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        frozen_stages=1,
        norm_cfg=norm_cfg,
        norm_eval=False,
        style='pytorch',
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    neck=dict(
        type='FPN',
        _scope_='mmdet',
        in_channels=[256, 512, 1024, 2048],
        out_channels=256,
        num_outs=5,
        norm_cfg=norm_cfg),
    rpn_head=dict(
        type='RPNHead',
        _scope_='mmdet',
        in_channels=256,
        feat_channels=256,
        anchor_generator=dict(
            type='AnchorGenerator',
            scales=[8],
            ratios=[0.5, 1.0, 2.0],
            strides=[4, 8, 16, 32, 64]),
        bbox_coder=dict(
            type='DeltaXYWHBBoxCoder',
            target_means=[0.0, 0.0, 0.0, 0.0],
            target_stds=[1.0, 1.0, 1.0, 1.0]),
        loss_cls=dict(
            type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
        loss_bbox=dict(type='SmoothL1Loss', beta=1.0 / 9.0,
                       loss_weight=1.0)),
    roi_head=dict(
        type='StandardRoIHead',
        _scope_='mmdet',
        bbox_roi_extractor=dict(
            type='SingleRoIExtractor',
            roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=2),
            out_channels=256,
            featmap_strides=[4, 8, 16, 32]),
        bbox_head=dict(
            type='Shared2FCBBoxHead',
            in_channels=256,
            fc_out_channels=1024,
            roi_feat_size=7,
            num_classes=1,
            bbox_coder=dict(
                type='DeltaXYWHBBoxCoder',
                target_means=[0.0, 0.0, 0.0, 0.0],
                target_stds=[0.1, 0.1, 0.2, 0.2]),
            reg_class_agnostic=False,
            loss_cls=dict(
                type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
            loss_bbox=dict(type='SmoothL1Loss', beta=1.0, loss_weight=1.0)),
        mask_roi_extractor=dict(
            type='SingleRoIExtractor',
            roi_layer=dict(type='RoIAlign', output_size=14, sampling_ratio=2),
            out_channels=256,
            featmap_strides=[4, 8, 16, 32]),
        mask_head=dict(
            type='FCNMaskHead',
            num_convs=4,
            in_channels=256,
            conv_out_channels=256,
            num_classes=1,
            norm_cfg=norm_cfg,
            loss_mask=dict(
                type='CrossEntropyLoss', use_mask=True, loss_weight=1.0))),
    semantic_head=dict(
        type='PanopticFPNHead',
        _scope_='mmdet',
        num_things_classes=1,
        num_stuff_classes=1,
        in_channels=256,
        inner_channels=128,
        start_level=0,
        end_level=4,
        norm_cfg=norm_cfg),
    img_discriminator=dict(type='PDAMImageDiscriminator', in_channels=256),
    sem_discriminator=dict(type='PDAMSemanticDiscriminator', in_channels=2),
    ins_discriminator=dict(type='PDAMInstanceDiscriminator',
                           in_channels=1024),
    img_da_levels=(0, 1, 2, 3),
    reweight=dict(enabled=True, beta=2.0, clamp=None, both_channels=False),
    alpha_da_mode='grl',
    target_rois='proposals',
    train_cfg=dict(
        rpn=dict(
            assigner=dict(
                type='MaxIoUAssigner',
                pos_iou_thr=0.7,
                neg_iou_thr=0.3,
                min_pos_iou=0.3,
                match_low_quality=True,
                ignore_iof_thr=-1),
            sampler=dict(
                type='RandomSampler',
                num=256,
                pos_fraction=0.5,
                neg_pos_ub=-1,
                add_gt_as_proposals=False),
            allowed_border=-1,
            pos_weight=-1,
            debug=False),
        rpn_proposal=dict(
            nms_pre=2000,
            max_per_img=1000,
            nms=dict(type='nms', iou_threshold=0.7),
            min_bbox_size=0),
        rcnn=dict(
            assigner=dict(
                type='MaxIoUAssigner',
                pos_iou_thr=0.5,
                neg_iou_thr=0.5,
                min_pos_iou=0.5,
                match_low_quality=True,
                ignore_iof_thr=-1),
            sampler=dict(
                type='RandomSampler',
                num=512,
                pos_fraction=0.25,
                neg_pos_ub=-1,
                add_gt_as_proposals=True),
            mask_size=28,
            pos_weight=-1,
            debug=False)),
    # dense nuclei: many proposals and detections per image (the authors
    # keep 8000 detections)
    test_cfg=dict(
        rpn=dict(
            nms_pre=4000,
            max_per_img=8000,
            nms=dict(type='nms', iou_threshold=0.7),
            min_bbox_size=0),
        rcnn=dict(
            score_thr=0.05,
            nms=dict(type='nms', iou_threshold=0.5),
            max_per_img=2000,
            mask_thr_binary=0.5)),
    paint=dict(score_thr=0.5, max_overlap=0.7))
# losses from discriminators that see no RoI in an iteration leave
# parameters without gradient
find_unused_parameters = True
