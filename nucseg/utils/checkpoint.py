"""Safe checkpoint loading under torch >= 2.6 (``weights_only=True``).

mmengine 0.10.7 pickles :class:`mmengine.logging.HistoryBuffer` objects and
numpy arrays/scalars into ``message_hub`` and ``meta`` of its checkpoints,
and loads them with ``torch.load`` without ``weights_only``. Since torch 2.6
that argument defaults to True, so ``--resume`` fails with
``WeightsUnpickler error: Unsupported global`` (mmengine issue 1655).

Rather than turning pickle execution back on for every file, nucseg adds
exactly the classes mmengine's own checkpoints contain to torch's allow
list (:func:`torch.serialization.add_safe_globals`). Everything else -- in
particular third-party weights such as SAM checkpoints -- stays under the
strict unpickler.

One thing in those checkpoints cannot be allow-listed safely:
``HistoryBuffer.__getstate__`` pickles its class-level table of statistics
methods, which pickle stores as ``getattr(HistoryBuffer, 'mean')``; allowing
the builtin ``getattr`` would let a crafted file walk from any allowed
object to arbitrary code. nucseg therefore drops that table from the
pickled state (``HistoryBuffer.__setstate__`` restores the default methods,
and custom ones are re-registered when their module is imported), so the
checkpoints nucseg writes load with ``weights_only=True``. Checkpoints
written by plain mmengine still contain ``getattr`` and are refused by the
strict loader; re-save them from an environment you trust.

On top of that this module provides the one checkpoint loading path of
nucseg (:func:`load_trusted`, also installed as mmengine's loader for
local files by :func:`register_safe_globals`, so ``load_from``,
``--resume`` and ``Pretrained`` init configs use it): a file that needs
anything beyond tensors and the allow-list raises
:class:`UntrustedCheckpointError` (nothing of it is executed), and a
truncated or corrupt file raises :class:`CorruptCheckpointError`.
:func:`load_weights` loads a state dict strictly by default: missing or
unexpected keys and shape mismatches raise
:class:`CheckpointMismatchError` naming the file. Models that need no
trained weights declare it with a class attribute ``training_free = True``
(:func:`is_training_free`); others refuse to predict without a checkpoint
unless random weights are asked for explicitly.
"""
import math
import os
import os.path as osp
import pickle
import re
from collections import OrderedDict
from typing import Callable, List, Optional, Union

import numpy as np

__all__ = [
    'mmengine_safe_globals', 'register_safe_globals', 'CheckpointError',
    'UntrustedCheckpointError', 'CorruptCheckpointError',
    'CheckpointMismatchError', 'MissingCheckpointError',
    'NonFiniteStateError', 'load_trusted', 'tensor_state_dict',
    'load_weights',
    'is_training_free', 'require_checkpoint', 'non_finite_entries',
    'atomic_replace'
]


class CheckpointError(RuntimeError):
    """Base class of the checkpoint errors below (all name the file)."""


class UntrustedCheckpointError(CheckpointError, pickle.UnpicklingError):
    """The file references Python code beyond tensors and the allow-list.

    Nothing of the file is executed: the strict unpickler stops at the
    first such reference.
    """


class CorruptCheckpointError(CheckpointError):
    """The file is truncated, empty or not a checkpoint at all."""


class CheckpointMismatchError(CheckpointError):
    """The checkpoint's keys or shapes do not fit the model."""


class MissingCheckpointError(CheckpointError):
    """A model that must be trained is used without a checkpoint."""


class NonFiniteStateError(CheckpointError, FloatingPointError):
    """A model state holds NaN or inf values (refused when saving)."""


def _history_buffer_getstate(self) -> dict:
    """Pickled state of a ``HistoryBuffer`` without its method table."""
    state = dict(self.__dict__)
    state.pop('statistics_methods', None)
    return state


def mmengine_safe_globals() -> list:
    """The classes and functions an mmengine checkpoint may reference."""
    from mmengine.logging.history_buffer import HistoryBuffer

    safe = [
        HistoryBuffer,
        np.ndarray,
        np.dtype,
        np.core.multiarray._reconstruct
        if hasattr(np, 'core') else None,
        np.core.multiarray.scalar if hasattr(np, 'core') else None,
    ]
    # numpy 2 pickles arrays via numpy._core; numpy 1 via numpy.core.
    try:
        from numpy._core import multiarray as _ma
        safe += [_ma._reconstruct, _ma.scalar]
    except ImportError:  # pragma: no cover - numpy 1
        pass
    # dtype classes (numpy >= 1.25 pickles dtypes as numpy.dtypes.XDType).
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        safe += [
            getattr(dtypes, name) for name in dir(dtypes)
            if name.endswith('DType')
        ]
    # numpy scalar types that end up in meta (e.g. np.float64 losses).
    safe += [
        np.float16, np.float32, np.float64, np.int8, np.int16, np.int32,
        np.int64, np.uint8, np.uint16, np.uint32, np.uint64, np.bool_
    ]
    return [s for s in safe if s is not None]


_REGISTERED = False


def register_safe_globals() -> None:
    """Make mmengine checkpoints load under ``weights_only=True``.

    Allow-lists the classes of :func:`mmengine_safe_globals`, makes
    ``HistoryBuffer`` pickle without bound methods (see the module
    docstring) and makes :func:`load_trusted` mmengine's loader for local
    files. Idempotent; a no-op on torch without ``add_safe_globals``.
    """
    import torch
    from mmengine.logging.history_buffer import HistoryBuffer

    global _REGISTERED
    if _REGISTERED or not hasattr(torch.serialization, 'add_safe_globals'):
        return
    HistoryBuffer.__getstate__ = _history_buffer_getstate
    import warnings
    with warnings.catch_warnings():
        # np.core is deprecated in numpy 2 but still the pickled path of
        # arrays saved by numpy 1; silence the access warning.
        warnings.simplefilter('ignore', DeprecationWarning)
        torch.serialization.add_safe_globals(mmengine_safe_globals())
    _install_mmengine_loader()
    _REGISTERED = True


def _install_mmengine_loader() -> None:
    """Route mmengine's local checkpoint loads through load_trusted."""
    from mmengine.runner.checkpoint import CheckpointLoader

    def load_from_local_trusted(filename: str, map_location=None) -> dict:
        return load_trusted(osp.expanduser(filename), map_location)

    CheckpointLoader.register_scheme(
        prefixes='', loader=load_from_local_trusted, force=True)


#: A dotted Python name, as torch quotes refused pickle globals.
_GLOBAL = re.compile(r'GLOBAL ([A-Za-z_][\w.]*\.[A-Za-z_]\w*)')


def load_trusted(path: Union[str, os.PathLike],
                 map_location: Union[str, Callable, None] = 'cpu',
                 mmap: bool = False):
    """Load a checkpoint file without executing anything from it.

    ``torch.load(weights_only=True)`` with nucseg's allow-list (see
    :func:`register_safe_globals`), for the zip and the legacy format.

    Args:
        path: Local checkpoint file.
        map_location: As for :func:`torch.load`.
        mmap (bool): Memory-map the tensors (zip format only), so that
            they are read from disk only when used.

    Returns:
        The loaded object (usually a dict).

    Raises:
        FileNotFoundError: If ``path`` is not a file.
        UntrustedCheckpointError: If the file references code (a pickle
            payload in ``state_dict``, ``meta`` or anywhere else).
        CorruptCheckpointError: If the file is empty, truncated or not a
            checkpoint.
    """
    import torch

    register_safe_globals()
    path = os.fspath(path)
    if not osp.isfile(path):
        raise FileNotFoundError(f'checkpoint not found: {path}')
    if osp.getsize(path) == 0:
        raise CorruptCheckpointError(f'checkpoint {path} is empty (0 bytes)')
    try:
        return torch.load(path, map_location=map_location, weights_only=True,
                          mmap=mmap)
    except pickle.UnpicklingError as err:
        found = _GLOBAL.search(str(err))
        if found is None and 'GLOBAL' in str(err):
            # A garbled name: the pickle stream itself is cut or damaged.
            raise CorruptCheckpointError(
                f'checkpoint {path} is truncated or corrupt (its pickle '
                'stream is damaged)') from None
        what = found.group(1) if found else 'a Python object'
        raise UntrustedCheckpointError(
            f'checkpoint {path} is not trusted: it references {what}, '
            'which is neither a tensor nor one of the objects nucseg '
            'allows in checkpoints. Nothing from it was executed. Use '
            'checkpoints written by nucseg or plain state dicts; if you '
            'know where this file comes from, re-save its state_dict in '
            'an environment you trust.') from None
    except (RuntimeError, EOFError, ValueError, OSError) as err:
        raise CorruptCheckpointError(
            f'checkpoint {path} is truncated or corrupt ({type(err).__name__}'
            f': {str(err).splitlines()[0][:200] if str(err) else "-"})'
        ) from None


def tensor_state_dict(checkpoint, path: str) -> 'OrderedDict':
    """The model weights in a loaded checkpoint, ``module.`` prefix off.

    Accepts mmengine checkpoints (weights under ``state_dict``), dicts
    holding them under ``model`` (e.g. SAM-Med2D) and plain name -> tensor
    dicts (e.g. the official SAM files).

    Args:
        checkpoint: What :func:`load_trusted` returned.
        path (str): The file, for the message.

    Raises:
        CheckpointMismatchError: No state dict of tensors in it.
    """
    import torch
    state = checkpoint
    if isinstance(checkpoint, dict):
        for key in ('state_dict', 'model'):
            if isinstance(checkpoint.get(key), dict):
                state = checkpoint[key]
                break
    if not isinstance(state, dict) or not all(
            isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointMismatchError(
            f'checkpoint {path} holds no state dict of tensors (a dict '
            "with a 'state_dict' entry or a plain name -> tensor dict)")
    out = OrderedDict()
    for key, value in state.items():
        out[re.sub(r'^module\.', '', key)] = value
    meta = getattr(state, '_metadata', None)
    if meta is not None:
        out._metadata = OrderedDict(
            (re.sub(r'^module\.?', '', k), v) for k, v in meta.items())
    return out


def _short(keys: List[str], n: int = 8) -> str:
    more = f' ... ({len(keys)} in all)' if len(keys) > n else ''
    return ', '.join(keys[:n]) + more


def load_weights(model, checkpoint, path: str, strict: bool = True,
                 logger=None) -> None:
    """Load the weights of a loaded checkpoint into ``model``.

    Args:
        model (nn.Module): The model (unwrapped or DDP-wrapped).
        checkpoint (dict): What :func:`load_trusted` returned.
        path (str): The file name, for messages.
        strict (bool): Raise on missing or unexpected keys and on shape
            mismatches. Non-strict loading warns, skips tensors of the
            wrong shape and loads the rest (fine-tuning a model with a
            different head).
        logger (optional): mmengine logger or name; defaults to
            ``'current'``.

    Raises:
        CheckpointMismatchError: In strict mode, naming the file and the
            offending keys.
    """
    import logging

    from mmengine.logging import print_log
    model = getattr(model, 'module', model)
    state = tensor_state_dict(checkpoint, path)
    own = model.state_dict()
    missing = [k for k in own
               if k not in state and not k.endswith('num_batches_tracked')]
    unexpected = [k for k in state if k not in own]
    shapes = [
        f'{k} {tuple(state[k].shape)} vs model {tuple(own[k].shape)}'
        for k in own if k in state and state[k].shape != own[k].shape
    ]
    problems = []
    if shapes:
        problems.append(f'{len(shapes)} shape mismatches: {_short(shapes)}')
    if missing:
        problems.append(f'{len(missing)} model keys missing from the '
                        f'checkpoint: {_short(missing)}')
    if unexpected:
        problems.append(f'{len(unexpected)} checkpoint keys the model does '
                        f'not have: {_short(unexpected)}')
    name = type(model).__name__
    if problems and strict:
        raise CheckpointMismatchError(
            f'checkpoint {path} does not fit {name}: ' + '; '.join(problems)
            + '. Is it a checkpoint of this config? (Ask for non-strict '
            'loading to load the matching part only.)')
    if problems:
        print_log(f'non-strict loading of {path} into {name}: '
                  + '; '.join(problems), logger=logger or 'current',
                  level=logging.WARNING)
        for k in list(state):
            if k in own and state[k].shape != own[k].shape:
                del state[k]
    model.load_state_dict(state, strict=False)


def is_training_free(model) -> bool:
    """Whether ``model`` declares that it needs no trained weights.

    A model class declares it with the class attribute
    ``training_free = True`` (e.g. SPROUT). Wrappers (DDP) are looked
    through.
    """
    model = getattr(model, 'module', model)
    return bool(getattr(type(model), 'training_free', False))


def require_checkpoint(model, checkpoint: Optional[str],
                       allow_random_weights: bool = False,
                       config: Optional[str] = None) -> None:
    """Refuse to predict with random weights.

    Raises:
        MissingCheckpointError: If ``checkpoint`` is ``None`` for a model
            that is not training-free and random weights were not asked
            for.
    """
    if checkpoint is not None or allow_random_weights or is_training_free(
            model):
        return
    name = type(getattr(model, 'module', model)).__name__
    where = f' of {config}' if config else ''
    raise MissingCheckpointError(
        f'no checkpoint given for the model{where} ({name}), which must be '
        'trained: its predictions would come from random weights. Pass the '
        'trained checkpoint (or, for debugging only, allow random weights '
        'explicitly: --allow-random-weights / allow_random_weights=True).')


def non_finite_entries(state: dict, limit: int = 5) -> List[str]:
    """Names of floating-point tensors holding NaN or inf (at most
    ``limit``) in a state dict."""
    import torch
    bad = []
    for key, value in state.items():
        if isinstance(value, torch.Tensor):
            finite = not value.is_floating_point() or bool(
                torch.isfinite(value).all())
        else:
            finite = not isinstance(value, float) or math.isfinite(value)
        if not finite:
            bad.append(key)
            if len(bad) >= limit:
                break
    return bad


def atomic_replace(tmp: Union[str, os.PathLike],
                   dst: Union[str, os.PathLike]) -> None:
    """Flush ``tmp`` to disk and rename it to ``dst`` in one step.

    Readers see either the old ``dst`` or the complete new one, never a
    partial file, even if the process is killed (``fsync`` of the file,
    ``os.replace``, ``fsync`` of the folder).
    """
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, dst)
    try:
        dir_fd = os.open(osp.dirname(osp.abspath(dst)), os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without folder fds
        return
    try:
        os.fsync(dir_fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(dir_fd)
