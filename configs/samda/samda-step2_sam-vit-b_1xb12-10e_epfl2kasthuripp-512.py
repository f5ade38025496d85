# SAMDA step 2, EPFL -> Kasthuri++: the Kasthuri++ -> EPFL step 2 with the
# domains swapped (20 raw EPFL training slices as source, 20 raw
# Kasthuri++ training slices as target); loads this direction's step 1.
_base_ = ['./samda-step2_sam-vit-b_1xb12-10e_kasthuripp2epfl-512.py']
train_dataloader = dict(
    dataset=dict(datasets=[
        dict(type='FewShotNucleiDataset', data_root='data/epfl',
             split='train', num_shots=20, shot_seed=0,
             require_labels=False,
             pipeline={{_base_.unlabelled_pipeline}}),
        dict(type='FewShotNucleiDataset', data_root='data/kasthuripp',
             split='train', num_shots=20, shot_seed=0,
             require_labels=False,
             pipeline={{_base_.unlabelled_pipeline}}),
    ]))
val_dataloader = dict(
    dataset=dict(data_root='data/kasthuripp', split='test'))
test_dataloader = val_dataloader
load_from = ('work_dirs/samda-step1_sam-vit-b_1xb12-100e_epfl2kasthuripp-'
             '512/iter_25000.pth')
