# Ablation of selfens-uda_unet_1xb1+1-500e_tnbc-to-kirc-256.py:
# without the entropy-minimisation loss (Table 1, "without EM loss").
_base_ = ['./selfens-uda_unet_1xb1+1-500e_tnbc-to-kirc-256.py']
model = dict(loss_weights=dict(em=0.0))
