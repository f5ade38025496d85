# CyC-PDAM step 3: PDAM (R-101-FPN-GN Mask R-CNN + image / semantic /
# instance-level adaptation + task re-weighting) on synthesised BBBC039 ->
# Kumar (source, data/bbbc039_to_kumar_inp from translate.py + inpaint.py)
# and the 16 Kumar training images (target, labels unused); tested on the
# 14 Kumar test images (data/kumar/splits/test.txt). Paper Table 3.
_base_ = [
    '../_base_/models/pdam_r101_fpn_gn.py',
    '../_base_/datasets/pdam_fluo_to_he.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_pdam_24k.py'
]
custom_hooks = [
    # alpha_da(t) = 2 / (1 + exp(-10 t)) - 1 (Eq. 5) -> model.grl_lambda
    dict(type='GRLLambdaHook', lambd=1.0, schedule='dann', gamma=10.0),
    dict(type='InstanceOverlayHook', max_images=16),
]
