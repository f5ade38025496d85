# Ablation of selfens-uda_unet_1xb1+1-500e_tnbc-to-tcia-256.py:
# without the rotation self-ensembling term (Table 1, "without
# self-ensembling"); no lambda(E) hook.
_base_ = ['./selfens-uda_unet_1xb1+1-500e_tnbc-to-tcia-256.py']
model = dict(self_ensembling=False)
custom_hooks = [
    dict(type='InstanceOverlayHook', max_images=16),
    dict(type='NonFiniteLossHook'),
]
