"""SAM building and official-checkpoint loading helpers."""
import os

import pytest
import torch

from nucseg.models.utils import (SamCheckpointError, build_sam,
                                 load_sam_part, load_sam_state_dict)
from nucseg.utils.checkpoint import UntrustedCheckpointError


@pytest.fixture(scope='module')
def tiny_ckpt(tmp_path_factory):
    torch.manual_seed(0)
    sam = build_sam('tiny', image_size=256)
    path = tmp_path_factory.mktemp('sam') / 'sam_tiny.pth'
    torch.save(sam.state_dict(), path)  # official layout: flat Sam keys
    return path, sam.state_dict()


def test_official_layout_round_trip(tiny_ckpt):
    path, ref = tiny_ckpt
    assert {k.split('.')[0] for k in ref} == {
        'image_encoder', 'prompt_encoder', 'mask_decoder'}
    torch.manual_seed(1)
    sam = build_sam('tiny', checkpoint=str(path), image_size=256)
    got = sam.state_dict()
    assert got.keys() == ref.keys()
    assert all(torch.equal(got[k], ref[k]) for k in ref)


def test_select_part_and_wrapped_checkpoints(tiny_ckpt, tmp_path):
    path, ref = tiny_ckpt
    part = load_sam_state_dict(str(path), 'mask_decoder.')
    assert part.keys() == {k[len('mask_decoder.'):]
                           for k in ref if k.startswith('mask_decoder.')}
    wrapped = tmp_path / 'wrapped.pth'
    torch.save({'state_dict': {'module.' + k: v for k, v in ref.items()}},
               wrapped)
    again = load_sam_state_dict(str(wrapped), 'mask_decoder.')
    assert all(torch.equal(again[k], part[k]) for k in part)


def test_errors_name_the_file(tiny_ckpt, tmp_path):
    path, ref = tiny_ckpt
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        load_sam_state_dict(str(tmp_path / 'missing.pth'))
    with pytest.raises(SamCheckpointError, match='no keys starting'):
        load_sam_state_dict(str(path), 'backbone.')
    # Wrong arch: a tiny checkpoint into a vit_b-sized encoder part.
    from nucseg.models.utils import build_sam_image_encoder
    enc = build_sam_image_encoder('tiny', image_size=512)
    with pytest.raises(SamCheckpointError, match='sam_tiny.pth'):
        load_sam_part(enc, str(path), 'image_encoder.')
    # Missing keys are reported (strict) or returned (non-strict).
    partial_file = tmp_path / 'partial.pth'
    torch.save({k: v for k, v in ref.items()
                if not k.endswith('iou_token.weight')}, partial_file)
    sam = build_sam('tiny', image_size=256)
    with pytest.raises(SamCheckpointError, match='iou_token'):
        load_sam_part(sam.mask_decoder, str(partial_file), 'mask_decoder.')
    missing, unexpected = load_sam_part(
        sam.mask_decoder, str(partial_file), 'mask_decoder.', strict=False)
    assert missing == ['iou_token.weight'] and unexpected == []


def test_untrusted_pickle_is_refused(tmp_path):
    class Evil:

        def __reduce__(self):
            return (os.system, ('echo pwned',))

    bad = tmp_path / 'evil.pth'
    torch.save({'x': Evil()}, bad)
    with pytest.raises(UntrustedCheckpointError,
                       match='evil.pth is not trusted'):
        load_sam_state_dict(str(bad))
