# The four H&E data sets of AMA-SAM (Table 1), converted to the nucseg
# layout with tools/dataset_converters/{monuseg,tnbc,cryonuseg,cpm17}.py:
#   data/monuseg    splits/train.txt (30 images), splits/test.txt (14)
#   data/tnbc       splits/train.txt, splits/test.txt (you provide them,
#                   see configs/ama_sam/README.md), all 50 images otherwise
#   data/cryonuseg  30 images (all used as an auxiliary set)
#   data/cpm17      splits/train.txt + splits/test.txt (64 images; all used
#                   as an auxiliary set)
# A method config picks the primary set and the auxiliary sets from these
# dicts; `split=None` means every image of the folder.
_base_ = ['./sam_pipelines.py']
dataset_type = 'NucleiDataset'
monuseg_root = 'data/monuseg'
tnbc_root = 'data/tnbc'
cryonuseg_root = 'data/cryonuseg'
cpm17_root = 'data/cpm17'
train_pipeline = {{_base_.sam_train_pipeline}}
test_pipeline = {{_base_.sam_test_pipeline}}
monuseg_train = dict(type=dataset_type, data_root=monuseg_root,
                     domain='monuseg', split='train', pipeline=train_pipeline)
monuseg_test = dict(type=dataset_type, data_root=monuseg_root,
                    domain='monuseg', split='test', test_mode=True,
                    pipeline=test_pipeline)
tnbc_train = dict(type=dataset_type, data_root=tnbc_root, domain='tnbc',
                  split='train', pipeline=train_pipeline)
tnbc_test = dict(type=dataset_type, data_root=tnbc_root, domain='tnbc',
                 split='test', test_mode=True, pipeline=test_pipeline)
tnbc_all = dict(type=dataset_type, data_root=tnbc_root, domain='tnbc',
                split=None, pipeline=train_pipeline)
monuseg_all = dict(type=dataset_type, data_root=monuseg_root,
                   domain='monuseg', split=None, pipeline=train_pipeline)
cryonuseg_all = dict(type=dataset_type, data_root=cryonuseg_root,
                     domain='cryonuseg', split=None, pipeline=train_pipeline)
cpm17_all = dict(type=dataset_type, data_root=cpm17_root, domain='cpm17',
                 split=None, pipeline=train_pipeline)
