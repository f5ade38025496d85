from .candidates import InstanceCandidates, bbox_overlap_pairs, tight_crop
from .sam_decoding import SharedImageDecoding, logits_to_masks
from .sam_point_masks import (PatchEmbedding, SAMPointMaskGenerator,
                              default_points_per_batch,
                              merge_overlapping_candidates, patch_starts)
from .smoothing import keep_largest_and_smooth, smooth_candidates
from .watershed_masks import WatershedMaskGenerator, disk_markers

__all__ = [
    'InstanceCandidates', 'bbox_overlap_pairs', 'tight_crop',
    'SAMPointMaskGenerator', 'PatchEmbedding', 'default_points_per_batch',
    'patch_starts', 'merge_overlapping_candidates', 'WatershedMaskGenerator',
    'disk_markers', 'SharedImageDecoding', 'logits_to_masks',
    'keep_largest_and_smooth', 'smooth_candidates'
]
