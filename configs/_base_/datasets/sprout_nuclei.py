# Test-only data sets of the training-free SPROUT (Sec. 4, App. B.1-B.3):
# images resized with Lanczos as in the paper (MoNuSeg to 1024, CPM17 and
# TNBC to 512); labels are loaded at the original size, predictions are
# resized back (nearest) before scoring. Convert the data with
# tools/dataset_converters/{monuseg,cpm17,tnbc}.py. TNBC: the paper uses a
# random 80/20 split and scores the 20%; put those names in
# data/tnbc/splits/test.txt.
dataset_type = 'NucleiDataset'


def _pipeline(size):
    return [
        dict(type='LoadNucleiImageFromFile'),
        # keep_ratio: the (square) benchmark tiles get the paper's size;
        # other images are not distorted.
        dict(type='Resize', scale=(size, size), keep_ratio=True,
             interpolation='lanczos'),
        dict(type='LoadInstanceAnnotations'),
        dict(type='PackNucleiInputs'),
    ]


monuseg_pipeline = _pipeline(1024)
cpm17_pipeline = _pipeline(512)
tnbc_pipeline = _pipeline(512)
monuseg_test = dict(type=dataset_type, data_root='data/monuseg',
                    split='test', test_mode=True, pipeline=monuseg_pipeline)
cpm17_test = dict(type=dataset_type, data_root='data/cpm17', split='test',
                  test_mode=True, pipeline=cpm17_pipeline)
tnbc_test = dict(type=dataset_type, data_root='data/tnbc', split='test',
                 test_mode=True, pipeline=tnbc_pipeline)
test_pipeline = monuseg_pipeline
test_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=monuseg_test)
test_evaluator = [
    dict(type='InstanceMetric'),
    dict(type='SemanticMetric', prefix='pixel'),
]
test_cfg = dict(type='TestLoop')
# Training-free: nothing to train or validate.
train_dataloader = None
train_cfg = None
val_dataloader = None
val_cfg = None
val_evaluator = None
optim_wrapper = None
