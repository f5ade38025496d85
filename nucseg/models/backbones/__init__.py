from .sam_encoder import AdapterBlock, SAMImageEncoder, resize_pos_embed

__all__ = ['SAMImageEncoder', 'AdapterBlock', 'resize_pos_embed']
