"""Reject misspelt configuration keys with the key's name and the options.

A typo in a config (``--cfg-options model.points.sigmma=8``) must not be
silently ignored. Two pieces do that for every registered nucseg
component:

* :func:`guard_init_kwargs` wraps a class's ``__init__`` so that unknown
  keyword arguments raise :class:`UnknownKeyError` (naming the key, the
  class, the accepted keys and the closest match) before the constructor
  runs. nucseg's registries apply it to every class registered in them
  (:mod:`nucseg.registry`), so a plain signature is all a component needs.
  Classes whose ``__init__`` takes ``**kwargs`` are left alone: they must
  not swallow keys, so list the parent's arguments explicitly instead.
* :func:`check_keys` validates a dict of options that a component takes
  as one argument (``points=dict(sigma=...)``, ``test_cfg=dict(...)``):
  call it in ``__init__`` with the accepted keys.

Example::

    check_keys(points, ('sigma', 'min_distance'), 'SPROUT.points')
"""
import difflib
import functools
import inspect
from typing import Callable, Iterable, Mapping, Optional, Tuple

__all__ = [
    'UnknownKeyError', 'check_keys', 'accepted_kwargs', 'guard_init_kwargs'
]


class UnknownKeyError(TypeError):
    """A config key that the component does not know (likely a typo).

    A ``TypeError`` like Python's own ``unexpected keyword argument``.
    """


def _message(owner: str, unknown: Iterable[str],
             accepted: Iterable[str]) -> str:
    unknown, accepted = list(unknown), sorted(accepted)
    keys = ', '.join(repr(k) for k in unknown)
    msg = (f'{owner}: unknown config key{"s" if len(unknown) > 1 else ""} '
           f'{keys}; accepted keys: {", ".join(accepted) or "(none)"}')
    hints = [
        f'{k!r} -> {m[0]!r}' for k in unknown
        for m in [difflib.get_close_matches(str(k), accepted, n=1)] if m
    ]
    if hints:
        msg += f' (did you mean {", ".join(hints)}?)'
    return msg


def check_keys(options: Optional[Mapping], accepted: Iterable[str],
               owner: str) -> None:
    """Raise if ``options`` holds a key outside ``accepted``.

    Args:
        options (Mapping, optional): The dict of options (``None`` passes).
        accepted (Iterable[str]): Keys the owner understands.
        owner (str): Name used in the message, e.g. ``'SPROUT.points'``.

    Raises:
        UnknownKeyError: Naming the unknown key(s), the accepted keys and
            the closest accepted key.
        TypeError: If ``options`` is not a mapping.
    """
    if options is None:
        return
    if not isinstance(options, Mapping):
        raise TypeError(f'{owner}: expected a dict of options, got '
                        f'{type(options).__name__}')
    accepted = tuple(accepted)
    unknown = [k for k in options if k not in accepted]
    if unknown:
        raise UnknownKeyError(_message(owner, unknown, accepted))


def accepted_kwargs(func: Callable) -> Optional[Tuple[str, ...]]:
    """Keyword arguments ``func`` accepts; ``None`` if it takes ``**kw``."""
    params = inspect.signature(func).parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    return tuple(p.name for p in params
                 if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
                 and p.name != 'self')


def guard_init_kwargs(cls: type) -> type:
    """Make ``cls(**cfg)`` reject unknown keys with a helpful message.

    Wraps the ``__init__`` that ``cls`` defines or inherits (a class
    without one, e.g. a hook, accepts no keys). A no-op for classes whose
    ``__init__`` takes ``**kwargs`` or is already guarded.

    Args:
        cls (type): The class to guard.

    Returns:
        type: ``cls`` (modified in place).
    """
    init = cls.__dict__.get('__init__', cls.__init__)
    if getattr(init, '_nucseg_key_guard', False):
        return cls
    if init is object.__init__:
        accepted = ()
    else:
        try:
            accepted = accepted_kwargs(init)
        except (TypeError, ValueError):  # builtins without a signature
            return cls
    if accepted is None:
        return cls
    where = inspect.getmodule(cls)
    where = getattr(where, '__name__', '?')

    @functools.wraps(init)
    def __init__(self, *args, **kwargs):
        unknown = [k for k in kwargs if k not in accepted]
        if unknown:
            raise UnknownKeyError(
                _message(f'{cls.__name__} ({where})', unknown, accepted))
        init(self, *args, **kwargs)

    __init__._nucseg_key_guard = True
    cls.__init__ = __init__
    return cls
