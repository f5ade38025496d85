# SPROUT as in the paper: a frozen foundation encoder on 128 px tiles
# (stride 64) for the prototype features, SAM point prompts on 512 px
# patches for the masks. Default feature backbone: SAM's own ViT-L image
# encoder (one download serves both stages). For the paper's Virchow2 /
# UNI / DINOv2 features use e.g.
#   extractor=dict(type='TiledExtractor', tile=128, tile_stride=64,
#                  input_size=224, backbone=dict(type='TimmExtractor',
#                  name='hf-hub:paige-ai/Virchow2', weights=LOCAL_FILE))
_base_ = ['./sprout_weightfree.py']
sam_arch = 'vit_l'
sam_checkpoint = 'checkpoints/sam_vit_l_0b3195.pth'
model = dict(
    # The paper's full-resolution CRF.
    crf=dict(scale=1.0),
    extractor=dict(
        _delete_=True,
        type='TiledExtractor',
        backbone=dict(type='SAMExtractor', arch=sam_arch,
                      checkpoint=sam_checkpoint, image_size=1024),
        tile=128,
        tile_stride=64,
        input_size=1024),
    mask_generator=dict(
        _delete_=True,
        type='SAMPointMaskGenerator',
        arch=sam_arch,
        checkpoint=sam_checkpoint,
        image_size=1024,
        patch_size=512,
        overlap=0.5,
        num_neg=2,
        multimask_output=False,
        min_area=50,
        max_area=20000,
        merge_iou=0.8))
