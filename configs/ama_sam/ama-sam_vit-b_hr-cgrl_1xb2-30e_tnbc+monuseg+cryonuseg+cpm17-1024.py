# AMA-SAM, Table 1 (TNBC primary; MoNuSeg, CryoNuSeg, cpm17 auxiliary).
# TNBC has no official split: write data/tnbc/splits/{train,test}.txt
# (see README.md, "Assumptions").
_base_ = ['./ama-sam_vit-b_hr-cgrl_1xb2-30e_monuseg+tnbc+cryonuseg+cpm17-1024.py']
# TNBC train (your split) + MoNuSeg 44 + CryoNuSeg 30 + cpm17 64 images;
# adjust to your TNBC split (default: 40 of the 50 TNBC images).
num_train_images = 40 + 44 + 30 + 64
train_dataloader = dict(
    dataset=dict(
        primary='tnbc',
        datasets=[
            {{_base_.tnbc_train}}, {{_base_.monuseg_all}},
            {{_base_.cryonuseg_all}}, {{_base_.cpm17_all}}
        ]))
val_dataloader = dict(dataset={{_base_.tnbc_test}})
test_dataloader = val_dataloader
optim_wrapper = dict(optimizer=dict(lr=2e-4 * 40 / num_train_images))
