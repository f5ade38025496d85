# SAMDA step 2 on CPU (see the step-1 config): the U-Net is frozen; the
# projector learns from 1 + 1 raw em / em_fibsem patches per batch with the
# perceptual loss. Loads step 1's last checkpoint.
_base_ = ['./samda-step1_sam-tiny_1xb2-40it_synth-em2fibsem-64.py']
model = dict(stage=2)
train_dataloader = dict(
    batch_size=2,
    sampler=dict(
        _delete_=True, type='MultiDomainSampler', batch_size=2,
        domain_ratio=[1, 1]),
    dataset=dict(
        _delete_=True,
        type='MultiDomainDataset',
        primary=1,
        datasets=[
            dict(type='FewShotNucleiDataset',
                 data_root={{_base_.source_root}},
                 split={{_base_.source_train_split}},
                 num_shots=None, require_labels=False,
                 pipeline={{_base_.unlabelled_pipeline}}),
            dict(type='FewShotNucleiDataset',
                 data_root={{_base_.target_root}},
                 split={{_base_.target_train_split}},
                 num_shots=None, require_labels=False,
                 pipeline={{_base_.unlabelled_pipeline}}),
        ]))
iters = 20
param_scheduler = [
    dict(type='PolyLR', power=0.9, eta_min=0.0, by_epoch=False, begin=0,
         end=iters)
]
train_cfg = dict(max_iters=iters, val_interval=iters)
default_hooks = dict(checkpoint=dict(interval=iters))
load_from = 'work_dirs/samda-step1_sam-tiny_1xb2-40it_synth-em2fibsem-64/iter_40.pth'  # noqa: E501
