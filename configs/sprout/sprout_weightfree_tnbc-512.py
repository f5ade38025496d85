# Weight-free SPROUT on the tnbc test split resized to 512.
_base_ = ['./sprout_weightfree.py']
test_dataloader = dict(dataset={{_base_.tnbc_test}})
