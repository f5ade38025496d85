# Table 4 row 2: one auxiliary data set (TNBC).
_base_ = ['./ama-sam_vit-b_hr-cgrl_1xb2-30e_monuseg+tnbc+cryonuseg+cpm17-1024.py']
num_train_images = 30 + 50
train_dataloader = dict(
    dataset=dict(datasets=[{{_base_.monuseg_train}}, {{_base_.tnbc_all}}]))
optim_wrapper = dict(optimizer=dict(lr=2e-4 * 40 / num_train_images))
