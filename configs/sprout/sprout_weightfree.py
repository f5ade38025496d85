# Weight-free SPROUT on MoNuSeg (nothing to download but the data):
#   python tools/test.py configs/sprout/sprout_weightfree.py
#   python tools/infer.py configs/sprout/sprout_weightfree.py \
#       IMAGE_OR_FOLDER --out preds
_base_ = [
    '../_base_/models/sprout_weightfree.py',
    '../_base_/datasets/sprout_nuclei.py', '../_base_/default_runtime.py'
]
custom_hooks = []
# Tiled inference of images and slides (tools/infer.py, nucseg.apis): the
# recipe's pixel sizes are for 40x H&E (0.25 um/px); 1024 px tiles
# overlapping by 128 px. The test pipeline's resize to 1024 (the paper's
# benchmark setting) is not applied to tiles.
infer_cfg = dict(mpp=0.25, tile_size=1024, overlap=128, nucleus_diameter=24)
