# SAMDA step 2 with the SAM-Med2D encoder (see its step-1 config); the
# encoder weights come from step 1's checkpoint.
_base_ = ['./samda-step2_sam-vit-b_1xb12-10e_kasthuripp2epfl-512.py']
model = dict(
    data_preprocessor=dict(sam_size=256),
    sam_encoder=dict(
        _delete_=True, type='SAMMed2DImageEncoder', arch='vit_b',
        image_size=256, checkpoint=None))
load_from = ('work_dirs/samda-step1_sam-med2d-b_1xb12-100e_kasthuripp2epfl-'
             '512/iter_25000.pth')
