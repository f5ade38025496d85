# SAMDA step 3 -- few-shot target fine-tuning (Sec. 2.2), Kasthuri++ ->
# EPFL. Trains the U-Net and the SAM projector (SAM ViT frozen) with Dice +
# CE on N annotated target slices picked by a seed (Table 1 sweep: N = 1, 2,
# 4, 8, 10, 20 with --cfg-options train_dataloader.dataset.num_shots=N, or
# tools/samda/run_stages.py --shots N; 0-shot = step 2's model). 50 epochs
# (12500 iterations), lr 1e-3. Loads step 2's last checkpoint.
_base_ = ['./samda-step2_sam-vit-b_1xb12-10e_kasthuripp2epfl-512.py']
model = dict(stage=3)
train_dataloader = dict(
    batch_size=12,
    sampler=dict(_delete_=True, type='InfiniteSampler', shuffle=True),
    dataset=dict(
        _delete_=True,
        type='FewShotNucleiDataset',
        data_root={{_base_.target_root}},
        split={{_base_.target_train_split}},
        num_shots=10,
        shot_seed=0,
        pipeline={{_base_.train_pipeline}}))
optim_wrapper = dict(optimizer=dict(lr=1e-3))
iters = 50 * 250
param_scheduler = [
    dict(type='PolyLR', power=0.9, eta_min=0.0, by_epoch=False, begin=0,
         end=iters)
]
train_cfg = dict(max_iters=iters, val_interval=10 * 250)
default_hooks = dict(checkpoint=dict(interval=10 * 250))
load_from = ('work_dirs/samda-step2_sam-vit-b_1xb12-10e_kasthuripp2epfl-'
             '512/iter_2500.pth')
