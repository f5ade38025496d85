# Pipelines and evaluators shared by every data set of the nuclei
# convention (images/, labels/ uint16 instance maps, splits/).
crop_size = (256, 256)
train_pipeline = [
    dict(type='LoadNucleiImageFromFile'),
    dict(type='LoadInstanceAnnotations'),
    dict(type='RandomInstanceCrop', crop_size=crop_size, fg_prob=0.5),
    dict(type='RandomFlipRot90'),
    dict(type='HEDStainJitter', alpha=0.05, beta=0.02),
    dict(type='GenerateNucleiTarget', mode='contour'),
    dict(type='PackNucleiInputs'),
]
test_pipeline = [
    dict(type='LoadNucleiImageFromFile'),
    dict(type='LoadInstanceAnnotations'),
    dict(type='GenerateNucleiTarget', mode='contour'),
    dict(type='PackNucleiInputs'),
]
val_evaluator = [
    dict(type='InstanceMetric'),
    dict(type='SemanticMetric', prefix='pixel'),
]
test_evaluator = val_evaluator
