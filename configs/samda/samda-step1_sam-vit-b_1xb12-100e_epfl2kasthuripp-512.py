# SAMDA step 1, reverse direction EPFL -> Kasthuri++ (Table 2, second row):
# source EPFL training stack (165 slices), target Kasthuri++ (train 85 /
# test 75 slices). Otherwise as the Kasthuri++ -> EPFL step 1.
_base_ = ['./samda-step1_sam-vit-b_1xb12-100e_kasthuripp2epfl-512.py']
source_root = 'data/epfl'
source_train_split = 'train'
target_root = 'data/kasthuripp'
target_train_split = 'train'
target_test_split = 'test'
train_dataloader = dict(
    dataset=dict(data_root=source_root, split=source_train_split))
val_dataloader = dict(
    dataset=dict(data_root=target_root, split=target_test_split))
test_dataloader = val_dataloader
