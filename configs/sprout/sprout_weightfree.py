# Weight-free SPROUT on MoNuSeg (nothing to download but the data):
#   python tools/test.py configs/sprout/sprout_weightfree.py
#   python tools/infer.py configs/sprout/sprout_weightfree.py \
#       IMAGE_OR_FOLDER --out preds
_base_ = [
    '../_base_/models/sprout_weightfree.py',
    '../_base_/datasets/sprout_nuclei.py', '../_base_/default_runtime.py'
]
custom_hooks = []
