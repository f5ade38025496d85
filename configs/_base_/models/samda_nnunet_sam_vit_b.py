# SAMDA (Wang & Xiao 2024): nnU-Net v2 2-D PlainConvUNet ("expert") + frozen
# SAM ViT-B image encoder and a 3-conv embedding projector ("generic"),
# concatenated at the U-Net bottleneck. 512 px patches: nnU-Net's 2-D
# topology has 8 encoder / 7 decoder stages (bottleneck 4x4x512); SAM sees
# the patch at 1024 px (64x64x256 embedding); the projector output is
# area-resized to 4x4 and concatenated (512 + 256 channels into the first
# decoder stage).
# SAM weights: checkpoints/sam_vit_b_01ec64.pth (official) or MedSAM's
# medsam_vit_b.pth (same key layout; Table 1's best encoder).
sam_checkpoint = 'checkpoints/sam_vit_b_01ec64.pth'
patch_size = (512, 512)
model = dict(
    type='SAMDA',
    stage=1,
    data_preprocessor=dict(type='SAMDADataPreprocessor', sam_size=1024),
    unet=dict(
        type='NNUNetPlainConvUNet',
        in_channels=1,
        num_classes=2,
        patch_size=patch_size,
        base_features=32,
        max_features=512),
    sam_encoder=dict(
        type='SAMImageEncoder',
        arch='vit_b',
        image_size=1024,
        checkpoint=sam_checkpoint,
        frozen=True,
        adapter=None,
        attn_impl='sdpa'),
    projector=dict(
        type='SAMEmbeddingProjector',
        in_channels=256,
        channels=256,
        out_channels=256),
    deep_supervision=True,
    loss_seg=dict(type='DiceCELoss', batch_dice=True),
    loss_adapt=dict(type='PerceptualLoss', feat_weight=1.0,
                    style_weight=1.0),
    postprocessor=dict(type='ConnectedComponents'),
    test_cfg=dict(mode='slide', crop_size=patch_size, stride=(256, 256)))
