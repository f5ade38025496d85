# Table 3 row 1: SAM's own mask decoder (256x256 output, upsampled) instead
# of the HR-Decoder; everything else as the main configuration. The HR row
# trains its decoder additions, so this row trains SAM's mask decoder
# (the prompt encoder stays frozen); see README.md, "Assumptions".
_base_ = ['./ama-sam_vit-b_hr-cgrl_1xb2-30e_monuseg+tnbc+cryonuseg+cpm17-1024.py']
model = dict(
    decode_head=dict(
        _delete_=True,
        type='SAMMaskDecoderHead',
        image_size={{_base_.sam_image_size}},
        checkpoint={{_base_.sam_checkpoint}},
        train_mask_decoder=True))
