# SPROUT, paper setting (SAM ViT-L), cpm17 test split resized to 512.
_base_ = ['./sprout_sam_vit_l.py']
test_dataloader = dict(dataset={{_base_.cpm17_test}})
