"""Build a model from a config and predict instance maps for images.

The same functions serve every nucseg model (trained segmentors such as
U-Net or AMA-SAM, and training-free ones such as SPROUT), and back
``tools/infer.py``::

    model = init_model('configs/sprout/sprout_weightfree.py')
    inst = inference_model(model, 'image.png')    # H x W int32 labels
"""
import os.path as osp
from pathlib import Path
from typing import List, Optional, Sequence, Union

import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import Compose, pseudo_collate
from mmengine.registry import init_default_scope
from mmengine.runner import load_checkpoint
from torch import nn

from nucseg.registry import MODELS
from nucseg.utils.checkpoint import register_safe_globals

__all__ = [
    'IMAGE_SUFFIXES', 'LABEL_TRANSFORMS', 'init_model', 'build_test_pipeline',
    'inference_model', 'list_images'
]

#: File suffixes treated as images when a folder is given.
IMAGE_SUFFIXES = ('.png', '.tif', '.tiff', '.jpg', '.jpeg', '.bmp')
#: Test-pipeline transforms that need labels; dropped for inference.
LABEL_TRANSFORMS = ('LoadInstanceAnnotations', 'GenerateNucleiTarget',
                    'LoadAnnotations')


def init_model(config: Union[str, Path, Config],
               checkpoint: Optional[str] = None,
               device: Optional[str] = None,
               cfg_options: Optional[dict] = None) -> nn.Module:
    """Build the model of ``config`` and load ``checkpoint``.

    Args:
        config (str | Config): Config file or object.
        checkpoint (str, optional): Checkpoint of a trained model, loaded
            with ``weights_only=True``; ``None`` for training-free models
            (or to keep the config's own weight loading, e.g. a SAM file).
        device (str, optional): ``'cuda'``, ``'cpu'`` ...; defaults to
            CUDA when available.
        cfg_options (dict, optional): Overrides merged into the config.

    Returns:
        nn.Module: The model in eval mode, with ``model.cfg`` set.
    """
    if not isinstance(config, Config):
        config = Config.fromfile(str(config))
    if cfg_options:
        config.merge_from_dict(cfg_options)
    init_default_scope(config.get('default_scope', 'nucseg'))
    import nucseg.datasets  # noqa: F401  (register transforms)
    import nucseg.models  # noqa: F401
    model = MODELS.build(config.model)
    if checkpoint is not None:
        if not osp.isfile(checkpoint):
            raise FileNotFoundError(f'checkpoint not found: {checkpoint}')
        register_safe_globals()
        load_checkpoint(model, checkpoint, map_location='cpu')
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
                    images: Union[str, Path, Sequence[Union[str, Path]]],
                    pipeline: Optional[Compose] = None
                    ) -> Union[np.ndarray, List[np.ndarray]]:
    """Instance label maps for one or several image files.

    Args:
        model (nn.Module): From :func:`init_model`.
        images (str | list[str]): Image path(s).
        pipeline (Compose, optional): Defaults to
            :func:`build_test_pipeline` of ``model.cfg``.

    Returns:
        np.ndarray | list[np.ndarray]: ``H x W`` int32 instance maps at
        the original image size (0 = background).
    """
    single = isinstance(images, (str, Path))
    paths = [images] if single else list(images)
    pipeline = pipeline or build_test_pipeline(model.cfg)
    results = []
    for path in paths:
        data = pipeline(dict(img_path=str(path)))
        batch = pseudo_collate([data])
        with torch.no_grad():
            sample = model.test_step(batch)[0]
        if 'pred_instance_map' not in sample:
            raise RuntimeError(
                f'{type(model).__name__} gave no pred_instance_map for '
                f'{path}; its config needs an instance post-processor')
        results.append(
            sample.pred_instance_map.data[0].cpu().numpy().astype(np.int32))
    return results[0] if single else results


def list_images(path: Union[str, Path]) -> List[Path]:
    """``path`` itself if it is a file, else the images in the folder.

    Raises:
        FileNotFoundError: ``path`` does not exist or holds no image.
    """
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f'input not found: {path}')
    files = sorted(p for p in path.iterdir()
                   if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FileNotFoundError(
            f'no image ({", ".join(IMAGE_SUFFIXES)}) in folder {path}')
    return files
