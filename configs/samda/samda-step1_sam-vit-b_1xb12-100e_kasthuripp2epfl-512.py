# SAMDA step 1 -- source supervised training (Sec. 2.2), Kasthuri++ -> EPFL.
# Trains the nnU-Net 2-D U-Net and the SAM projector with Dice + CE on the
# annotated source (Kasthuri++ train, 85 slices); the SAM ViT-B is frozen.
# 100 nnU-Net epochs (25000 iterations of 12 patches of 512 px), lr 1e-2.
# Validation watches the target test set (no checkpoint selection on it).
# Data: tools/dataset_converters/lucchi_kasthuri_pp.py -> data/kasthuripp,
#       tools/dataset_converters/epfl_lucchi.py --random-test 100 -> data/epfl
# Steps 2 and 3 load this run's last checkpoint (tools/samda/run_stages.py).
_base_ = [
    '../_base_/models/samda_nnunet_sam_vit_b.py',
    '../_base_/datasets/samda_em.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_samda_nnunet.py',
]
source_root = 'data/kasthuripp'
source_train_split = 'train'
target_root = 'data/epfl'
target_train_split = 'random_train'
target_test_split = 'random_test'
train_dataloader = dict(
    batch_size=12,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type='NucleiDataset',
        data_root=source_root,
        split=source_train_split,
        pipeline={{_base_.train_pipeline}}))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='NucleiDataset',
        data_root=target_root,
        split=target_test_split,
        test_mode=True,
        pipeline={{_base_.test_pipeline}}))
test_dataloader = val_dataloader
