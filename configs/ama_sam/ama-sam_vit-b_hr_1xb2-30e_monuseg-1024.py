# Table 2/4 row 1: primary data set only (no auxiliary data, no alignment).
_base_ = ['./ama-sam_vit-b_hr-cgrl_1xb2-30e_monuseg+tnbc+cryonuseg+cpm17-1024.py']
num_train_images = 30
train_dataloader = dict(dataset=dict(datasets=[{{_base_.monuseg_train}}]))
model = dict(alignment='none', discriminator=None, loss_align=None)
optim_wrapper = dict(optimizer=dict(lr=2e-4 * 40 / num_train_images))
