from .sam import (PROMPT_EMBED_DIM, SAM_ARCHS, SAM_PIXEL_MEAN, SAM_PIXEL_STD,
                  SamCheckpointError, build_sam, build_sam_image_encoder,
                  clear_sam_checkpoint_cache,
                  build_sam_mask_decoder, build_sam_prompt_encoder,
                  load_sam_part, load_sam_state_dict)

__all__ = [
    'SAM_ARCHS', 'SAM_PIXEL_MEAN', 'SAM_PIXEL_STD', 'PROMPT_EMBED_DIM',
    'SamCheckpointError', 'load_sam_state_dict', 'load_sam_part',
    'build_sam_image_encoder', 'build_sam_prompt_encoder',
    'build_sam_mask_decoder', 'build_sam', 'clear_sam_checkpoint_cache'
]
