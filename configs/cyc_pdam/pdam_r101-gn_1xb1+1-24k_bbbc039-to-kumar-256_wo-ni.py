# Ablation "w/o NI" (paper Table 4): PDAM trained on the CycleGAN
# translations *without* nuclei inpainting (data/bbbc039_to_kumar, the
# output of translate.py before inpaint.py).
_base_ = ['./pdam_r101-gn_1xb1+1-24k_bbbc039-to-kumar-256.py']
source_root = 'data/bbbc039_to_kumar'
train_dataloader = dict(
    dataset=dict(datasets=[
        dict(type='NucleiDataset', data_root=source_root, split='train',
             domain='source', pipeline={{_base_.source_pipeline}}),
        dict(type='NucleiDataset', data_root={{_base_.target_root}},
             split='train', domain='target', require_labels=False,
             pipeline={{_base_.target_pipeline}}),
    ]))
val_dataloader = dict(dataset=dict(data_root=source_root))
