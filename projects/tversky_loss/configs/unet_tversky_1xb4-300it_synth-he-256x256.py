# The U-Net baseline with the plugin's Tversky loss added to the CE loss.
# Run from the repository root with the plugin on the Python path:
#   PYTHONPATH=projects/tversky_loss python tools/train.py \
#       projects/tversky_loss/configs/unet_tversky_1xb4-300it_synth-he-256x256.py
_base_ = [
    '../../../configs/unet/'
    'unet-s5-c16_contour_1xb4-300it_synth-he-256x256.py'
]
custom_imports = dict(imports=['nucseg_tversky'], allow_failed_imports=False)
model = dict(
    decode_head=dict(loss_decode=[
        dict(
            type='CrossEntropyLoss',
            use_sigmoid=False,
            class_weight=[1.0, 1.0, 2.0],
            loss_weight=1.0,
            loss_name='loss_ce'),
        dict(type='MultiClassTverskyLoss', alpha=0.3, beta=0.7,
             loss_weight=1.0),
    ]))
