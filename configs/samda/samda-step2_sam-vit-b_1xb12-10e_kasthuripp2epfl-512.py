# SAMDA step 2 -- unsupervised domain adaptation (Sec. 2.2, Eq. 2-5),
# Kasthuri++ -> EPFL. The U-Net is frozen; the SAM-based adaptation module
# (frozen ViT + projector) sees pairs of raw source/target patches and the
# projector is trained with the perceptual loss (feature + Gram style).
# 20 raw images per domain (Sec. 4), 6 + 6 patches per batch, 10 epochs
# (2500 iterations), lr 1e-2. Loads step 1's last checkpoint; the SAM
# weights come from it (no SAM file needed here).
_base_ = ['./samda-step1_sam-vit-b_1xb12-100e_kasthuripp2epfl-512.py']
model = dict(stage=2, sam_encoder=dict(checkpoint=None))
raw_images_per_domain = 20
train_dataloader = dict(
    batch_size=12,
    sampler=dict(
        _delete_=True, type='MultiDomainSampler', batch_size=12,
        domain_ratio=[6, 6]),
    dataset=dict(
        _delete_=True,
        type='MultiDomainDataset',
        primary=1,
        datasets=[
            dict(type='FewShotNucleiDataset',
                 data_root={{_base_.source_root}},
                 split={{_base_.source_train_split}},
                 num_shots=raw_images_per_domain, shot_seed=0,
                 require_labels=False,
                 pipeline={{_base_.unlabelled_pipeline}}),
            dict(type='FewShotNucleiDataset',
                 data_root={{_base_.target_root}},
                 split={{_base_.target_train_split}},
                 num_shots=raw_images_per_domain, shot_seed=0,
                 require_labels=False,
                 pipeline={{_base_.unlabelled_pipeline}}),
        ]))
iters = 10 * 250
param_scheduler = [
    dict(type='PolyLR', power=0.9, eta_min=0.0, by_epoch=False, begin=0,
         end=iters)
]
train_cfg = dict(max_iters=iters, val_interval=iters)
default_hooks = dict(checkpoint=dict(interval=iters))
load_from = ('work_dirs/samda-step1_sam-vit-b_1xb12-100e_kasthuripp2epfl-'
             '512/iter_25000.pth')
