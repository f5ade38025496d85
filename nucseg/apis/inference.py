"""Build a model from a config and predict instance maps for images.

The same functions serve every nucseg model (trained segmentors such as
U-Net or AMA-SAM, and training-free ones such as SPROUT), and back
``tools/infer.py``::

    model = init_model('configs/sprout/sprout_weightfree.py')
    inst = inference_model(model, 'image.png')    # H x W int32 labels

Images of any size are segmented tile by tile at the config's pixel size
and stitched (:mod:`nucseg.apis.tiled_inference`).

A model that must be trained is refused without a checkpoint (unless
``allow_random_weights=True``); a checkpoint is loaded strictly and only if
it is trusted (see :mod:`nucseg.utils.checkpoint`).
"""
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.registry import init_default_scope
from torch import nn

from nucseg.registry import MODELS
from nucseg.utils.checkpoint import (load_trusted, load_weights,
                                     require_checkpoint)

__all__ = [
    'IMAGE_SUFFIXES', 'LABEL_TRANSFORMS', 'init_model', 'build_test_pipeline',
    'inference_model', 'list_images', 'count_instances', 'output_names'
]

#: File suffixes treated as images when a folder is given (whole-slide
#: formats read with OpenSlide included).
IMAGE_SUFFIXES = ('.png', '.tif', '.tiff', '.jpg', '.jpeg', '.bmp', '.svs',
                  '.ndpi', '.mrxs', '.scn', '.bif', '.vms', '.vmu',
                  '.svslide')
#: Test-pipeline transforms that need labels; dropped for inference.
LABEL_TRANSFORMS = ('LoadInstanceAnnotations', 'GenerateNucleiTarget',
                    'LoadAnnotations')


def init_model(config: Union[str, Path, Config],
               checkpoint: Optional[str] = None,
               device: Optional[str] = None,
               cfg_options: Optional[dict] = None,
               strict: bool = True,
               allow_random_weights: bool = False) -> nn.Module:
    """Build the model of ``config`` and load ``checkpoint``.

    Args:
        config (str | Config): Config file or object.
        checkpoint (str, optional): Checkpoint of a trained model, loaded
            only if trusted (:func:`nucseg.utils.checkpoint.load_trusted`).
            ``None`` is allowed for training-free models (class attribute
            ``training_free = True``, e.g. SPROUT), which keep the config's
            own weight loading (e.g. a SAM file).
        device (str, optional): ``'cuda'``, ``'cpu'`` ...; defaults to
            CUDA when available.
        cfg_options (dict, optional): Overrides merged into the config.
        strict (bool): Missing or unexpected keys and shape mismatches are
            errors. Defaults to True.
        allow_random_weights (bool): Allow a model that must be trained to
            run without a checkpoint (debugging only). Defaults to False.

    Returns:
        nn.Module: The model in eval mode, with ``model.cfg`` set.

    Raises:
        MissingCheckpointError: No checkpoint for a model that must be
            trained.
        UntrustedCheckpointError, CorruptCheckpointError,
        CheckpointMismatchError: See :mod:`nucseg.utils.checkpoint`.
    """
    name = None
    if not isinstance(config, Config):
        name = str(config)
        config = Config.fromfile(name)
    if cfg_options:
        config.merge_from_dict(cfg_options)
    init_default_scope(config.get('default_scope', 'nucseg'))
    import nucseg.datasets  # noqa: F401  (register transforms)
    import nucseg.models  # noqa: F401
    model = MODELS.build(config.model)
    if checkpoint is not None:
        load_weights(model, load_trusted(checkpoint, 'cpu'), str(checkpoint),
                     strict=strict)
    else:
        require_checkpoint(model, None, allow_random_weights, name
                           or config.filename)
    device = device or ('cuda' if torch.cuda.is_available() else 'cpu')
    model.cfg = config
    return model.to(device).eval()


def build_test_pipeline(cfg: Config) -> Compose:
    """The config's test pipeline without label-loading transforms.

    Taken from ``test_dataloader.dataset.pipeline`` (what ``tools/test.py``
    runs, including ``--cfg-options`` edits), else from ``test_pipeline``.
    """
    loader = cfg.get('test_dataloader', None) or {}
    pipeline = loader.get('dataset', {}).get('pipeline', None)
    if pipeline is None:
        pipeline = cfg.get('test_pipeline', None)
    if pipeline is None:
        raise KeyError('the config has neither test_dataloader.dataset.'
                       'pipeline nor test_pipeline')
    steps = [t for t in pipeline if t['type'] not in LABEL_TRANSFORMS]
    return Compose(steps)


def inference_model(model: nn.Module,
                    images: Union[str, Path, np.ndarray,
                                  Sequence[Union[str, Path, np.ndarray]]],
                    mpp: Optional[float] = None,
                    tile_size: Optional[int] = None,
                    overlap: Optional[int] = None,
                    tissue: str = 'off'
                    ) -> Union[np.ndarray, List[np.ndarray]]:
    """Instance label maps for one or several images (or slides).

    Every image is segmented at the config's pixel size by tiled inference
    with instance stitching (:class:`~nucseg.apis.tiled_inference.
    TiledInferencer`): any size works, and the prediction is returned at
    the image's full resolution. Notes about an input (pixel size assumed,
    image smaller than a tile, alpha channel) are issued as warnings.

    Args:
        model (nn.Module): From :func:`init_model`.
        images (str | np.ndarray | list): Image or slide path(s), or
            ``HxWx3`` uint8 RGB array(s).
        mpp (float, optional): Microns per pixel of the input(s); default:
            the file's metadata, else the config's ``infer_cfg.mpp``.
        tile_size, overlap (int, optional): Override ``infer_cfg``.
        tissue (str): ``'off'`` (default), ``'on'`` or ``'auto'`` (skip
            tiles without tissue on slides).

    Returns:
        np.ndarray | list[np.ndarray]: ``H x W`` int32 instance maps at
        the original image size (0 = background).
    """
    import warnings

    from .tiled_inference import TiledInferencer, predict_image
    single = isinstance(images, (str, Path, np.ndarray))
    items = [images] if single else list(images)
    inferencer = TiledInferencer(model, tile_size=tile_size,
                                 overlap=overlap, tissue=tissue)
    results = []
    for item in items:
        labels, notes = predict_image(inferencer, item, mpp=mpp,
                                      return_notes=True)
        for note in notes:
            warnings.warn(note)
        results.append(labels)
    return results[0] if single else results


def list_images(path: Union[str, Path],
                recursive: bool = False) -> List[Path]:
    """``path`` itself if it is a file, else the images in the folder.

    Entries with an image suffix that are not folders are listed even if
    they cannot be read (broken links, other special files), so that a
    folder run reports them by name instead of skipping them silently.

    Args:
        path (str | Path): An image file or a folder.
        recursive (bool): Also list images in sub-folders (sorted by
            relative path).

    Raises:
        FileNotFoundError: ``path`` does not exist or holds no image.
    """
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f'input not found: {path}')
    entries = path.rglob('*') if recursive else path.iterdir()
    files = sorted((p for p in entries
                    if not p.is_dir() and p.suffix.lower() in IMAGE_SUFFIXES),
                   key=lambda p: p.relative_to(path).as_posix())
    if not files:
        raise FileNotFoundError(
            f'no image ({", ".join(IMAGE_SUFFIXES)}) in folder {path}' +
            ('' if recursive else ' (sub-folders are searched only when '
             'asked: --recursive)'))
    return files


def count_instances(inst: np.ndarray) -> int:
    """Number of distinct non-zero ids of a label map (not its max id)."""
    ids = np.unique(inst)
    return int(np.count_nonzero(ids))


def output_names(images: Sequence[Path], root: Optional[Path] = None,
                 reserved_suffixes: Sequence[str] = ()) -> Dict[Path, str]:
    """A unique output name (relative path without suffix) per image.

    The name is the image's path relative to ``root`` without its suffix
    (``sub/x`` for ``root/sub/x.tif``). Images whose names would collide
    (``x.png`` and ``x.tif``; compared case-insensitively, as on macOS
    and Windows) get their suffix appended (``x_png``, ``x_tif``); any
    remaining clash, including with the derived names in
    ``reserved_suffixes`` (e.g. ``'_overlay'``), gets ``_2``, ``_3`` ...

    Args:
        images (Sequence[Path]): Input images.
        root (Path, optional): Folder the images were found in.
        reserved_suffixes (Sequence[str]): Suffixes of extra outputs
            written per image (``<name><suffix>.png``).

    Returns:
        dict[Path, str]: Output name per image, in the order given.
    """
    def base(p: Path) -> str:
        rel = p.relative_to(root) if root is not None else Path(p.name)
        return rel.with_suffix('').as_posix()

    counts: Dict[str, int] = {}
    for p in images:
        counts[base(p).lower()] = counts.get(base(p).lower(), 0) + 1
    used, names = set(), {}
    for p in images:
        name = base(p)
        if counts[name.lower()] > 1:
            name = f'{name}_{p.suffix.lstrip(".").lower()}'
        candidate, k = name, 1
        while any((candidate + s).lower() in used
                  for s in ('', *reserved_suffixes)):
            k += 1
            candidate = f'{name}_{k}'
        for s in ('', *reserved_suffixes):
            used.add((candidate + s).lower())
        names[p] = candidate
    return names
