# Ablation of selfens-uda_unet_1xb1+1-500e_tcia-to-kirc-256.py:
# without the dense CRF (Table 1, "without CRF"): same training,
# the thresholded sigmoid is the prediction.
_base_ = ['./selfens-uda_unet_1xb1+1-500e_tcia-to-kirc-256.py']
model = dict(crf=None)
