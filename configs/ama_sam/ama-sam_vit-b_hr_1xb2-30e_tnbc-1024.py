# Table 1 row T-dagger: TNBC primary only (no auxiliary data, no
# alignment); the TNBC counterpart of ama-sam_vit-b_hr_1xb2-30e_monuseg-1024.
_base_ = ['./ama-sam_vit-b_hr-cgrl_1xb2-30e_tnbc+monuseg+cryonuseg+cpm17-1024.py']
# Your TNBC training split (default: 40 of the 50 images).
num_train_images = 40
train_dataloader = dict(dataset=dict(datasets=[{{_base_.tnbc_train}}]))
model = dict(alignment='none', discriminator=None, loss_align=None)
optim_wrapper = dict(optimizer=dict(lr=2e-4 * 40 / num_train_images))
