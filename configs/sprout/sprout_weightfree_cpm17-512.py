# Weight-free SPROUT on the cpm17 test split resized to 512.
_base_ = ['./sprout_weightfree.py']
test_dataloader = dict(dataset={{_base_.cpm17_test}})
