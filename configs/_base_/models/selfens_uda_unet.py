# Self-ensembling UDA (Li et al., COMPAY 2021): U-Net segmenter S (3 -> 1,
# sigmoid), AdaptSegNet output-space discriminator D, U-Net reconstructor R
# (1 -> 3), three Adam optimizers (S 1e-4, D 1e-3, R 1e-3), dense CRF and
# distance-transform watershed at test time.
#
# S and R are mmseg's UNet backbone (the baseline's U-Net) with a 1x1 output
# conv (PixelUNet): 64 base channels, 5 stages, BN, transposed-conv
# up-sampling as CellSegUDA's milesial U-Net (whose bottleneck has 512
# channels; mmseg's has 1024).
norm_cfg = dict(type='BN', requires_grad=True)  # SyncBN for multi-GPU
unet = dict(
    type='UNet',
    in_channels=3,
    base_channels=64,
    num_stages=5,
    strides=(1, 1, 1, 1, 1),
    enc_num_convs=(2, 2, 2, 2, 2),
    dec_num_convs=(2, 2, 2, 2),
    downsamples=(True, True, True, True),
    enc_dilations=(1, 1, 1, 1, 1),
    dec_dilations=(1, 1, 1, 1),
    norm_cfg=norm_cfg,
    act_cfg=dict(type='ReLU'),
    upsample_cfg=dict(type='DeconvModule'),
    norm_eval=False)
data_preprocessor = dict(
    type='SegDataPreProcessor',
    # ImageNet statistics in RGB order; nucseg pipelines load RGB.
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=False,
    pad_val=0,
    seg_pad_val=255,
    size_divisor=1)
model = dict(
    type='SelfEnsemblingUDA',
    data_preprocessor=data_preprocessor,
    segmenter=dict(type='PixelUNet', backbone=unet, out_channels=1),
    # FCDiscriminator(num_classes=1, ndf=64): 64-128-256-512 -> 1
    discriminator=dict(
        type='OutputSpaceDiscriminator', in_channels=1, base_channels=64,
        num_convs=4),
    reconstructor=dict(
        type='PixelUNet', backbone=dict(unet, in_channels=1),
        out_channels=3),
    # Eq. 4 weights: L_dice and L_em 1; Eq. 9: lambda_adv 0.001,
    # lambda_recons 0.01 (Sec. 3).
    loss_weights=dict(em=1.0, adv=0.001, recon=0.01),
    self_ensembling=True,
    consistency_domains=('source', 'target'),
    consistency_ops=('rot90', 'rot180', 'rot270', 'hflip', 'vflip'),
    entropy_domains=('source', ),
    # Eq. 13's appearance (bilateral) and smoothness (Gaussian) kernels;
    # the paper gives no values: the pydensecrf/DeepLab defaults.
    crf=dict(
        type='DenseCRF', iters=5, gaussian_sxy=3.0, gaussian_compat=3.0,
        bilateral_sxy=80.0, bilateral_srgb=13.0, bilateral_compat=10.0),
    postprocessor=dict(type='DistanceWatershed'),
    test_cfg=dict(threshold=0.5))
optim_wrapper = dict(
    constructor='MultiOptimWrapperConstructor',
    segmenter=dict(optimizer=dict(type='Adam', lr=1e-4)),
    discriminator=dict(optimizer=dict(type='Adam', lr=1e-3)),
    reconstructor=dict(optimizer=dict(type='Adam', lr=1e-3)))
# One DDP per part (plain DDP would not call the model's train_step).
model_wrapper_cfg = dict(type='MMSeparateDistributedDataParallel')
