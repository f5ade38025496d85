# AMA-SAM (Fig. 1): frozen SAM ViT-B with per-block adapters, CGRL domain
# alignment, SPGen self-prompts and the High-Resolution Decoder.
# Download the official SAM weights (see configs/ama_sam/README.md) and
# point `sam_checkpoint` at them; every SAM part loads from that one file.
sam_checkpoint = 'checkpoints/sam_vit_b_01ec64.pth'
sam_image_size = 1024
data_preprocessor = dict(
    type='SegDataPreProcessor',
    # SAM's pixel statistics (RGB); nucseg pipelines load RGB.
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=False,
    pad_val=0,
    seg_pad_val=255,
    size=(sam_image_size, sam_image_size))
model = dict(
    type='AMASAM',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='SAMImageEncoder',
        arch='vit_b',
        image_size=sam_image_size,
        checkpoint=sam_checkpoint,
        frozen=True,
        # UN-SAM's adapter: bottleneck 192, parallel to the block MLP.
        adapter=dict(bottleneck=192, scale=0.5, placement='parallel'),
        # Bias folded into SDPA: same CPU speed as SAM's attention, about
        # half the activation memory (tools/analysis_tools benchmark).
        attn_impl='sdpa_fold',
        with_cp=False),
    prompter=dict(type='SPGen', in_channels=256, threshold=0.95),
    decode_head=dict(
        type='HRDecoderHead',
        image_size=sam_image_size,
        checkpoint=sam_checkpoint,
        num_slices=16),
    discriminator=dict(
        type='DomainDiscriminator', in_channels=256, width=256,
        num_convs=3),
    # Per-domain weights (inverse image counts) are set from the training
    # set by DomainSizesHook (see configs/ama_sam/*.py).
    loss_align=dict(type='CGRLLoss'),
    loss_fine=dict(type='DiceFocalLoss'),
    alignment='cgrl',
    grl_lambda=1.0,
    alpha=1.0,
    beta=1.0,
    threshold=0.5,
    postprocessor=dict(
        type='DistanceWatershed', fg_thresh=0.5, min_distance=4,
        peak_thresh=1.5, min_area=10, hole_area=16),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
