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
strict loader; load them once with ``weights_only=False`` if you trust them.
"""
import numpy as np

__all__ = ['mmengine_safe_globals', 'register_safe_globals']


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

    Allow-lists the classes of :func:`mmengine_safe_globals` and makes
    ``HistoryBuffer`` pickle without bound methods (see the module
    docstring). Idempotent; a no-op on torch without ``add_safe_globals``.
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
    _REGISTERED = True
