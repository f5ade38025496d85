# Pipelines for SAM-based segmentors (AMA-SAM): images resized to the SAM
# input size, binary nucleus target. At test time the labels are loaded
# after the resize, so metrics are computed at the original image size
# (the segmentor resizes its prediction back to ``ori_shape``).
sam_pipeline_size = 1024
sam_train_pipeline = [
    dict(type='LoadNucleiImageFromFile'),
    dict(type='LoadInstanceAnnotations'),
    dict(type='Resize', scale=(sam_pipeline_size, sam_pipeline_size),
         keep_ratio=False),
    dict(type='RandomFlipRot90'),
    dict(type='GenerateNucleiTarget', mode='binary'),
    dict(type='PackNucleiInputs'),
]
sam_test_pipeline = [
    dict(type='LoadNucleiImageFromFile'),
    dict(type='Resize', scale=(sam_pipeline_size, sam_pipeline_size),
         keep_ratio=False),
    dict(type='LoadInstanceAnnotations'),
    dict(type='GenerateNucleiTarget', mode='binary'),
    dict(type='PackNucleiInputs'),
]
val_evaluator = [
    dict(type='InstanceMetric'),
    dict(type='SemanticMetric', prefix='pixel'),
]
test_evaluator = val_evaluator
