# PDAM for BBBC039 -> TNBC (paper Table 3, right): source = synthesised
# BBBC039 translated with the TNBC CycleGAN and inpainted; target = the 40
# training images of 8 TNBC patients; test = the 10 images of the other 3
# (data/tnbc/splits/{train,test}.txt, see README).
_base_ = ['./pdam_r101-gn_1xb1+1-24k_bbbc039-to-kumar-256.py']
source_root = 'data/bbbc039_to_tnbc_inp'
target_root = 'data/tnbc'
train_dataloader = dict(
    dataset=dict(datasets=[
        dict(type='NucleiDataset', data_root=source_root, split='train',
             domain='source', pipeline={{_base_.source_pipeline}}),
        dict(type='NucleiDataset', data_root=target_root, split='train',
             domain='target', require_labels=False,
             pipeline={{_base_.target_pipeline}}),
    ]))
val_dataloader = dict(dataset=dict(data_root=source_root))
test_dataloader = dict(dataset=dict(data_root=target_root))
