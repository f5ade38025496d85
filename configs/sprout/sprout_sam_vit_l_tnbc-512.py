# SPROUT, paper setting (SAM ViT-L), tnbc test split resized to 512.
_base_ = ['./sprout_sam_vit_l.py']
test_dataloader = dict(dataset={{_base_.tnbc_test}})
