# SAMDA step 3 with the SAM-Med2D encoder (see its step-1 config).
_base_ = ['./samda-step3_sam-vit-b_1xb12-50e-10shot_kasthuripp2epfl-512.py']
model = dict(
    data_preprocessor=dict(sam_size=256),
    sam_encoder=dict(
        _delete_=True, type='SAMMed2DImageEncoder', arch='vit_b',
        image_size=256, checkpoint=None))
load_from = ('work_dirs/samda-step2_sam-med2d-b_1xb12-10e_kasthuripp2epfl-'
             '512/iter_2500.pth')
