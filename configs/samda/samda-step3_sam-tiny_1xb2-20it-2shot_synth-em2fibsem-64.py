# SAMDA step 3 on CPU (see the step-1 config): U-Net and projector
# fine-tuned on 2 seeded em_fibsem shots, lr 1e-3. Loads step 2's last
# checkpoint.
_base_ = ['./samda-step2_sam-tiny_1xb2-20it_synth-em2fibsem-64.py']
model = dict(stage=3)
train_dataloader = dict(
    batch_size=2,
    sampler=dict(_delete_=True, type='InfiniteSampler', shuffle=True),
    dataset=dict(
        _delete_=True,
        type='FewShotNucleiDataset',
        data_root={{_base_.target_root}},
        split={{_base_.target_train_split}},
        num_shots=2,
        shot_seed=0,
        pipeline={{_base_.train_pipeline}}))
optim_wrapper = dict(optimizer=dict(lr=1e-3))
iters = 20
param_scheduler = [
    dict(type='PolyLR', power=0.9, eta_min=0.0, by_epoch=False, begin=0,
         end=iters)
]
train_cfg = dict(max_iters=iters, val_interval=iters)
default_hooks = dict(checkpoint=dict(interval=iters))
load_from = 'work_dirs/samda-step2_sam-tiny_1xb2-20it_synth-em2fibsem-64/iter_20.pth'  # noqa: E501
