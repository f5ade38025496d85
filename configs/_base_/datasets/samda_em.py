# EM mitochondria pipelines for SAMDA (grey slices stored as RGB PNGs by
# tools/dataset_converters/{epfl_lucchi,lucchi_kasthuri_pp,em_stack}.py).
# Training: random patch of the U-Net's patch size (a third of them
# centred on a mitochondrion, like nnU-Net's foreground oversampling),
# flips and 90-degree rotations, binary target. Step 2 reads raw images
# (no labels). Testing: whole slices, sliding-window inference in the
# model.
train_crop_size = (512, 512)
train_pipeline = [
    dict(type='LoadNucleiImageFromFile'),
    dict(type='LoadInstanceAnnotations'),
    dict(type='RandomInstanceCrop', crop_size=train_crop_size, fg_prob=0.33),
    dict(type='RandomFlipRot90'),
    dict(type='GenerateNucleiTarget', mode='binary'),
    dict(type='PackNucleiInputs'),
]
unlabelled_pipeline = [
    dict(type='LoadNucleiImageFromFile'),
    dict(type='RandomInstanceCrop', crop_size=train_crop_size),
    dict(type='RandomFlipRot90'),
    dict(type='PackNucleiInputs'),
]
test_pipeline = [
    dict(type='LoadNucleiImageFromFile'),
    dict(type='LoadInstanceAnnotations'),
    dict(type='GenerateNucleiTarget', mode='binary'),
    dict(type='PackNucleiInputs'),
]
# Dice (foreground) and IoU over the binary masks, per image then averaged.
val_evaluator = [dict(type='SemanticMetric', prefix='pixel',
                      metrics=('dice', 'iou'))]
test_evaluator = val_evaluator
