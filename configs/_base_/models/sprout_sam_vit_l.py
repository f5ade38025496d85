# SPROUT as in the paper (Sec. 3, App. B-D; authors' code where the paper
# is silent), every stage spelled out here -- this file does NOT inherit the
# weight-free recipe (sprout_weightfree.py), whose stain vectors, point
# prompts, hole filling and missing NMS are different on purpose.
#
#   stain priors   fixed Ruifrok H&E matrix, Otsu on H, top 60% references
#   features       frozen encoder on 128 px tiles, stride 64 (averaged)
#   POT-Scan       K=3, rho 0.6 +0.05, eps 0.1, KL 1.0; stops when a
#                  component > 20000 px or one of the 3 largest components
#                  joins > 5 regions of the accepted mask (gated by 95%
#                  coverage of the reference, official control flow)
#   activation     plan -> fg/bg maps (slack mass to background), full-size
#                  dense CRF (10 it.; sxy 1/3, bilateral 67/3/4), Otsu,
#                  holes < 40 px filled, objects < 30 px removed
#   points         watershed centroids of reference + scan foreground,
#                  merged within 10 px; one negative per 24 px cell of the
#                  background of the expanded (rho + 2 steps) mask
#   SAM            512 px patches, overlap 0.5, positive + 2 nearest
#                  negatives, largest-piece smoothing, 50..20000 px,
#                  border / negative-point filters, per-patch merge (IoU >
#                  0.8) + containment-aware soft NMS (Alg. 3)
#   NMS            whole image: merge (IoU > 0.8) + Alg. 3 again
#
# Features: SAM's own ViT-L image encoder by default (one download serves
# both stages). The paper's features come from pathology foundation
# models (Virchow2 / UNI / H-optimus) and its masks from SAM 2.1 Hiera-L;
# nucseg uses SAM v1 ViT-L for both (see configs/sprout/README.md). For a
# timm foundation model use e.g.
#   extractor=dict(type='TiledExtractor', tile=128, tile_stride=64,
#                  input_size=224, backbone=dict(type='TimmExtractor',
#                  name='hf-hub:paige-ai/Virchow2', weights=LOCAL_FILE))
sam_arch = 'vit_l'
sam_checkpoint = 'checkpoints/sam_vit_l_0b3195.pth'
# Containment-aware soft NMS (Alg. 3) with the official code's settings;
# run on every SAM patch and then on the whole image.
sprout_nms = dict(
    type='ContainmentAwareSoftNMS',
    sam_weight=0.7,
    h_weight=0.3,
    containment_thresh=0.9,
    penalty=0.5,
    sigma=0.5,
    score_thresh=0.5,
    iou_type='mask',
    contained_score_thresh=0.5,
    threshold_mode='official')
model = dict(
    type='SPROUT',
    # Raw RGB values in [0, 255]: no normalisation, no padding.
    data_preprocessor=dict(
        type='SegDataPreProcessor', mean=None, std=None, bgr_to_rgb=False,
        pad_val=0, seg_pad_val=255),
    extractor=dict(
        type='TiledExtractor',
        # 16 ViT-L tiles of 1024 px per call: the folded-bias attention
        # never stores the 16 x 16 x 4096 x 4096 bias of a global block
        # (17.2 GB in fp32 with attn_impl='sdpa'); README: peak memory.
        backbone=dict(type='SAMExtractor', arch=sam_arch,
                      checkpoint=sam_checkpoint, image_size=1024,
                      attn_impl='sdpa_fold'),
        tile=128,
        tile_stride=64,
        input_size=1024,
        tiles_per_batch=16),
    priors=dict(top_t=0.6, stain_matrix=None, smooth_sigma=0.0,
                h_sigma=0.0),
    pot_scan=dict(
        type='POTScan', k=3, rho0=0.6, step=0.05, rho_max=1.0, eps=0.1,
        lambd=1.0, max_component_area=20000, max_merged_regions=5,
        merge_top_n=3, cover_ratio=0.95, merge_rule='gated',
        expand_steps=2),
    activation=dict(slack_to_bg=True),
    crf=dict(type='DenseCRF', iters=10, gaussian_sxy=1, gaussian_compat=3,
             bilateral_sxy=67, bilateral_srgb=3, bilateral_compat=4,
             scale=1.0),
    fg_prior=False,
    cleanup=dict(hole_area=40, min_area=30, nucleus_hole_area=0,
                 max_clump_area=0),
    points=dict(method='watershed', min_distance=5, merge_distance=10.0,
                snap_to_mask=False, neg_grid=24, neg_margin=0.0,
                neg_mode='random'),
    mask_generator=dict(
        type='SAMPointMaskGenerator',
        arch=sam_arch,
        checkpoint=sam_checkpoint,
        image_size=1024,
        patch_size=512,
        overlap=0.5,
        num_neg=2,
        multimask_output=False,
        min_area=50,
        max_area=20000,
        merge_iou=0.8,
        smooth_radius=2,
        border_margin=5,
        max_neg_inside=3,
        patch_nms=sprout_nms),
    nms=sprout_nms)
