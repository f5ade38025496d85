# SPROUT, paper setting (SAM ViT-L), MoNuSeg test split resized to 1024.
# Put sam_vit_l_0b3195.pth (see README.md) in checkpoints/, or point both
# SAM parts at it:
#   --cfg-options model.extractor.backbone.checkpoint=PATH \
#                 model.mask_generator.checkpoint=PATH
_base_ = [
    '../_base_/models/sprout_sam_vit_l.py',
    '../_base_/datasets/sprout_nuclei.py', '../_base_/default_runtime.py'
]
custom_hooks = []
