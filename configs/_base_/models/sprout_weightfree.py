# SPROUT with no pretrained weights at all: a multi-scale stain/texture
# filter bank replaces the foundation-model features and a marker-
# controlled watershed seeded by SPROUT's point prompts replaces SAM.
model = dict(
    type='SPROUT',
    # Raw RGB values in [0, 255]: no normalisation, no padding.
    data_preprocessor=dict(
        type='SegDataPreProcessor', mean=None, std=None, bgr_to_rgb=False,
        pad_val=0, seg_pad_val=255),
    extractor=dict(type='FilterBankExtractor', sigmas=(1.0, 2.0, 4.0, 8.0),
                   stride=4),
    priors=dict(top_t=0.6),
    pot_scan=dict(type='POTScan', k=3, rho0=0.6, step=0.05, rho_max=1.0,
                  eps=0.1, lambd=1.0, max_component_area=20000,
                  cover_ratio=0.95, merge_rule='gated'),
    crf=dict(type='DenseCRF', iters=10, gaussian_sxy=1, gaussian_compat=3,
             bilateral_sxy=67, bilateral_srgb=3, bilateral_compat=4),
    points=dict(min_distance=5, merge_distance=10.0, neg_grid=24,
                neg_mode='center'),
    cleanup=dict(hole_area=40, min_area=30),
    mask_generator=dict(type='WatershedMaskGenerator', elevation='distance',
                        min_area=50, max_area=20000),
    nms=dict(type='ContainmentAwareSoftNMS', sam_weight=0.7, h_weight=0.3,
             sigma=0.5, score_thresh=0.5, return_label_map=True))
