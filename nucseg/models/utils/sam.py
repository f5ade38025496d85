"""Building SAM parts and loading the official SAM checkpoints.

The official checkpoints (``sam_vit_b_01ec64.pth``, ``sam_vit_l_0b3195.pth``,
``sam_vit_h_4b8939.pth``) are plain state dicts of the whole
``segment_anything.modeling.Sam`` model: keys ``image_encoder.*``,
``prompt_encoder.*`` and ``mask_decoder.*``. Every nucseg module that uses a
part of SAM loads its part from such a file through
:func:`load_sam_state_dict` and reports missing and unexpected keys through
:func:`load_sam_part`. A checkpoint is untrusted input: it is read with
:func:`nucseg.utils.checkpoint.load_trusted` (pickled code is refused and
nothing of the file is executed). A file is read (memory-mapped) once even
when a model loads several of its parts.
"""
import os
import zipfile
from functools import partial
from typing import Dict, List, Optional, Tuple

import torch
from mmengine.logging import print_log
from segment_anything.modeling import (ImageEncoderViT, MaskDecoder,
                                       PromptEncoder, Sam, TwoWayTransformer)
from torch import nn

from nucseg.utils.checkpoint import (CheckpointError, load_trusted,
                                     tensor_state_dict)

__all__ = [
    'SAM_ARCHS', 'SAM_PIXEL_MEAN', 'SAM_PIXEL_STD', 'PROMPT_EMBED_DIM',
    'SamCheckpointError', 'load_sam_state_dict', 'load_sam_part',
    'clear_sam_checkpoint_cache',
    'build_sam_image_encoder', 'build_sam_prompt_encoder',
    'build_sam_mask_decoder', 'build_sam'
]

#: Image-encoder settings of the official variants plus ``tiny`` (random
#: weights only; for tests and CPU demos).
SAM_ARCHS: Dict[str, dict] = {
    'vit_b':
    dict(embed_dim=768, depth=12, num_heads=12,
         global_attn_indexes=(2, 5, 8, 11), window_size=14),
    'vit_l':
    dict(embed_dim=1024, depth=24, num_heads=16,
         global_attn_indexes=(5, 11, 17, 23), window_size=14),
    'vit_h':
    dict(embed_dim=1280, depth=32, num_heads=16,
         global_attn_indexes=(7, 15, 23, 31), window_size=14),
    'tiny':
    dict(embed_dim=64, depth=2, num_heads=2, global_attn_indexes=(1, ),
         window_size=4),
}
SAM_PIXEL_MEAN = (123.675, 116.28, 103.53)
SAM_PIXEL_STD = (58.395, 57.12, 57.375)
PROMPT_EMBED_DIM = 256
PATCH_SIZE = 16


class SamCheckpointError(CheckpointError):
    """A SAM checkpoint lacks the part asked for or does not fit the model.

    Files that cannot be used at all raise the loader's errors:
    :class:`~nucseg.utils.checkpoint.UntrustedCheckpointError` (pickled
    code), :class:`~nucseg.utils.checkpoint.CorruptCheckpointError`
    (truncated) or :class:`~nucseg.utils.checkpoint.CheckpointMismatchError`
    (no state dict of tensors).
    """


def load_sam_state_dict(filename: str,
                        prefix: Optional[str] = None
                        ) -> Dict[str, torch.Tensor]:
    """Read a SAM checkpoint (tensors only) and select one part of it.

    Args:
        filename (str): Path of the checkpoint: the official full-model
            state dict, or a dict holding it under ``state_dict``/``model``.
        prefix (str, optional): Keep only keys starting with this prefix
            (e.g. ``'image_encoder.'``) and strip it. ``None`` keeps all.

    Returns:
        dict: Parameter name -> tensor.

    Raises:
        FileNotFoundError: ``filename`` does not exist.
        CheckpointError: The file cannot be read safely or holds no state
            dict of tensors (see :class:`SamCheckpointError`).
        SamCheckpointError: It has no key with ``prefix``.
    """
    ckpt = _read_checkpoint(filename)
    if prefix is None:
        return dict(ckpt)
    part = {
        k[len(prefix):]: v
        for k, v in ckpt.items() if k.startswith(prefix)
    }
    if not part:
        heads = sorted({k.split('.')[0] for k in ckpt})
        raise SamCheckpointError(
            f'{filename} has no keys starting with {prefix!r} '
            f'(top-level names: {heads})')
    return part


#: The last checkpoint read by :func:`_read_checkpoint`: its identity
#: ``(real path, mtime_ns, size)`` and its memory-mapped state dict.
_LAST_CHECKPOINT: Dict[str, object] = {}


def clear_sam_checkpoint_cache() -> None:
    """Forget the memory-mapped checkpoint kept by :func:`_read_checkpoint`.
    """
    _LAST_CHECKPOINT.clear()


def _read_checkpoint(filename: str) -> Dict[str, torch.Tensor]:
    """Whole state dict of a SAM checkpoint, read once per file.

    A model reads several parts of the same file (AMA-SAM: the image
    encoder, the prompt encoder and the mask decoder). The file is
    memory-mapped (``torch.load(mmap=True, weights_only=True)``; tensors
    are read from disk only when copied into a module) and the last one
    is kept, keyed by its path, modification time and size, so the parts
    share one read. Legacy (non-zip) files cannot be mapped: they are read
    fully on every call and not kept.
    """
    if not os.path.isfile(filename):
        raise FileNotFoundError(
            f'SAM checkpoint not found: {filename} (download it from '
            'https://github.com/facebookresearch/segment-anything'
            '#model-checkpoints)')
    st = os.stat(filename)
    identity = (os.path.realpath(filename), st.st_mtime_ns, st.st_size)
    if _LAST_CHECKPOINT.get('identity') == identity:
        return _LAST_CHECKPOINT['state']
    mmap = zipfile.is_zipfile(filename)
    # Refuses pickled code ("not trusted") and truncated files, by name.
    ckpt = tensor_state_dict(load_trusted(filename, 'cpu', mmap=mmap),
                             filename)
    _LAST_CHECKPOINT.clear()
    if mmap:
        _LAST_CHECKPOINT.update(identity=identity, state=ckpt)
    return ckpt


def load_sam_part(module: nn.Module,
                  filename: str,
                  prefix: str,
                  strict: bool = True,
                  ignore_missing: Tuple[str, ...] = ()
                  ) -> Tuple[List[str], List[str]]:
    """Load one part of a SAM checkpoint into ``module``.

    Args:
        module (nn.Module): e.g. a ``segment_anything`` image encoder.
        filename (str): Checkpoint path (see :func:`load_sam_state_dict`).
        prefix (str): Part of the checkpoint, e.g. ``'mask_decoder.'``.
        strict (bool): Raise when keys are missing or unexpected, or shapes
            differ. Keys of ``module`` whose name contains one of
            ``ignore_missing`` (new, trainable layers such as adapters) may
            be missing either way.
        ignore_missing (tuple[str]): Name fragments of parameters that the
            checkpoint is not expected to hold.

    Returns:
        tuple[list[str], list[str]]: Missing and unexpected keys.
    """
    state = load_sam_state_dict(filename, prefix)
    own = module.state_dict()
    shape_errors = [
        f'{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}'
        for k, v in state.items() if k in own and own[k].shape != v.shape
    ]
    if shape_errors:
        raise SamCheckpointError(
            f'{filename} ({prefix}*) does not fit the model (wrong arch?): '
            + '; '.join(shape_errors[:5]))
    result = module.load_state_dict(state, strict=False)
    missing = [
        k for k in result.missing_keys
        if not any(frag in k for frag in ignore_missing)
    ]
    unexpected = list(result.unexpected_keys)
    if missing or unexpected:
        msg = (f'{filename} ({prefix}*): missing keys {missing[:10]}'
               f'{" ..." if len(missing) > 10 else ""}, unexpected keys '
               f'{unexpected[:10]}{" ..." if len(unexpected) > 10 else ""}')
        if strict:
            raise SamCheckpointError(msg)
        print_log(msg, logger='current', level=30)
    return missing, unexpected


def build_sam_image_encoder(arch: str = 'vit_b',
                            image_size: int = 1024) -> ImageEncoderViT:
    """The ``segment_anything`` ViT image encoder of variant ``arch``."""
    if arch not in SAM_ARCHS:
        raise KeyError(f'unknown SAM arch {arch!r}; one of '
                       f'{sorted(SAM_ARCHS)}')
    a = SAM_ARCHS[arch]
    return ImageEncoderViT(
        depth=a['depth'],
        embed_dim=a['embed_dim'],
        img_size=image_size,
        mlp_ratio=4,
        norm_layer=partial(nn.LayerNorm, eps=1e-6),
        num_heads=a['num_heads'],
        patch_size=PATCH_SIZE,
        qkv_bias=True,
        use_rel_pos=True,
        global_attn_indexes=tuple(a['global_attn_indexes']),
        window_size=a['window_size'],
        out_chans=PROMPT_EMBED_DIM)


def build_sam_prompt_encoder(image_size: int = 1024) -> PromptEncoder:
    """SAM's prompt encoder for square inputs of ``image_size``."""
    if image_size % PATCH_SIZE:
        raise ValueError(f'image_size must be a multiple of {PATCH_SIZE}, '
                         f'got {image_size}')
    emb = image_size // PATCH_SIZE
    return PromptEncoder(
        embed_dim=PROMPT_EMBED_DIM,
        image_embedding_size=(emb, emb),
        input_image_size=(image_size, image_size),
        mask_in_chans=16)


def build_sam_mask_decoder() -> MaskDecoder:
    """SAM's mask decoder (identical for every official variant)."""
    return MaskDecoder(
        num_multimask_outputs=3,
        transformer=TwoWayTransformer(
            depth=2,
            embedding_dim=PROMPT_EMBED_DIM,
            mlp_dim=2048,
            num_heads=8),
        transformer_dim=PROMPT_EMBED_DIM,
        iou_head_depth=3,
        iou_head_hidden_dim=256)


def build_sam(arch: str = 'vit_b',
              checkpoint: Optional[str] = None,
              image_size: int = 1024) -> Sam:
    """A whole ``segment_anything`` :class:`Sam`, optionally loaded.

    Args:
        arch (str): ``vit_b``, ``vit_l``, ``vit_h`` or ``tiny``.
        checkpoint (str, optional): Official full-model checkpoint.
        image_size (int): Input side (1024 for the official weights).

    Returns:
        Sam: In eval mode.
    """
    sam = Sam(
        image_encoder=build_sam_image_encoder(arch, image_size),
        prompt_encoder=build_sam_prompt_encoder(image_size),
        mask_decoder=build_sam_mask_decoder(),
        pixel_mean=list(SAM_PIXEL_MEAN),
        pixel_std=list(SAM_PIXEL_STD))
    if checkpoint is not None:
        load_sam_part(sam, checkpoint, prefix='', strict=True)
    return sam.eval()
