# SAMDA step 3, EPFL -> Kasthuri++ (10 target shots, as in Table 2): the
# Kasthuri++ -> EPFL step 3 with Kasthuri++ as the target; loads this
# direction's step 2.
_base_ = ['./samda-step3_sam-vit-b_1xb12-50e-10shot_kasthuripp2epfl-512.py']
train_dataloader = dict(
    dataset=dict(data_root='data/kasthuripp', split='train'))
val_dataloader = dict(
    dataset=dict(data_root='data/kasthuripp', split='test'))
test_dataloader = val_dataloader
load_from = ('work_dirs/samda-step2_sam-vit-b_1xb12-10e_epfl2kasthuripp-'
             '512/iter_2500.pth')
