# SAMDA step 1 with the SAM-Med2D encoder (Table 1, "SAM-MED + UNet"):
# SAM-Med2D's ViT-B with its adapters (frozen), pretrained at 256 px, so the
# 512 px patch reaches it at 256 px (16x16x256 embedding). Weights:
# checkpoints/sam-med2d_b.pth. Steps 2 and 3: the *_sam-med2d-b_* configs
# (the SAM encoder's keys differ from the plain SAM chain's).
_base_ = ['./samda-step1_sam-vit-b_1xb12-100e_kasthuripp2epfl-512.py']
model = dict(
    data_preprocessor=dict(sam_size=256),
    sam_encoder=dict(
        _delete_=True,
        type='SAMMed2DImageEncoder',
        arch='vit_b',
        image_size=256,
        checkpoint='checkpoints/sam-med2d_b.pth'))
