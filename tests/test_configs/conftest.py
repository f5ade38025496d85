"""A random SAM vit_b checkpoint in the official layout, written once per
test session (building vit_b and saving it costs seconds and ~360 MB)."""
import pytest
import torch


@pytest.fixture(scope='session')
def sam_vit_b_checkpoint(tmp_path_factory):
    """``segment_anything.build_sam_vit_b()``'s state dict (keys
    ``image_encoder.*``, ``prompt_encoder.*``, ``mask_decoder.*``)."""
    from segment_anything import build_sam_vit_b
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp('sam') / 'sam_vit_b_random.pth'
    torch.save(build_sam_vit_b().state_dict(), path)
    return path
