# The classical baseline as a training-free model: Ruifrok haematoxylin,
# Otsu's threshold, distance-transform watershed (no weights):
#   python tools/test.py configs/classical/h-otsu-watershed_monuseg.py
#   python tools/infer.py configs/classical/h-otsu-watershed_monuseg.py \
#       IMAGE_OR_SLIDE --out preds --format geojson csv labels overlay
# Pixel sizes (min_area 30 px, markers 4 px apart) are for 40x H&E.
_base_ = ['../_base_/default_runtime.py']
model = dict(
    type='HaematoxylinWatershed',
    # Raw RGB values in [0, 255]: no normalisation, no padding.
    data_preprocessor=dict(
        type='SegDataPreProcessor', mean=None, std=None, bgr_to_rgb=False,
        pad_val=0, seg_pad_val=255),
    threshold=None,
    postprocessor=dict(min_area=30, hole_area=40, min_distance=4,
                       peak_thresh=1.5))
# Tiled inference (tools/infer.py, nucseg.apis): 40x H&E (MoNuSeg),
# 1024 px tiles overlapping by 128 px (> 2x the largest nuclei).
infer_cfg = dict(mpp=0.25, tile_size=1024, overlap=128, nucleus_diameter=24)
test_pipeline = [
    dict(type='LoadNucleiImageFromFile'),
    dict(type='LoadInstanceAnnotations'),
    dict(type='PackNucleiInputs'),
]
test_dataloader = dict(
    batch_size=1,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='NucleiDataset', data_root='data/monuseg',
                 split='test', test_mode=True, pipeline=test_pipeline))
test_evaluator = [
    dict(type='InstanceMetric'),
    dict(type='SemanticMetric', prefix='pixel'),
]
test_cfg = dict(type='TestLoop')
custom_hooks = []
train_dataloader = None
train_cfg = None
val_dataloader = None
val_cfg = None
val_evaluator = None
optim_wrapper = None
