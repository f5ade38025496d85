from .adapter import Adapter
from .dense_crf import BoundDenseCRF, DenseCRF, dense_crf
from .grl import ConditionalGradientReversal, GradientReversal, cgrl, grl
from .sam_attention import (ATTN_IMPLS, SDPAAttention, decomposed_rel_pos,
                            rel_pos_attn_mask, sam_attention, set_attn_impl)

__all__ = [
    'Adapter', 'grl', 'cgrl', 'GradientReversal',
    'ConditionalGradientReversal', 'ATTN_IMPLS', 'SDPAAttention',
    'decomposed_rel_pos', 'rel_pos_attn_mask', 'sam_attention',
    'set_attn_impl', 'dense_crf', 'DenseCRF', 'BoundDenseCRF'
]
