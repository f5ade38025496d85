"""Generation of one synthetic tile and its instance label map.

All randomness comes from one generator seeded with ``seed``, consumed in
a fixed order: layout, instance placement, then the modality renderer.
The image is rendered *from the cleaned label map*, so every nucleus drawn
is labelled and vice versa (a sliver cut by the tile border that is too
small to keep is drawn as non-nuclear tissue).
"""
from typing import Sequence, Tuple, Union

import numpy as np

from .domains import resolve_domain
from .instances import clean_labels, place_instances
from .layout import make_layout
from .render_em import render_em
from .render_fluo import render_fluo
from .render_he import render_he
from .spec import DomainSpec

__all__ = ['SeedLike', 'parse_size', 'generate_sample']

SeedLike = Union[int, np.random.SeedSequence]


def parse_size(size: Union[int, Sequence[int]]) -> Tuple[int, int]:
    """``int`` -> ``(s, s)``; ``(h, w)`` -> ``(h, w)``; validated."""
    if isinstance(size, (int, np.integer)):
        hw = (int(size), int(size))
    else:
        try:
            hw = tuple(int(s) for s in size)
        except TypeError:
            raise TypeError(
                f'size must be an int or (height, width), got {size!r}'
            ) from None
        if len(hw) != 2:
            raise ValueError(f'size must be an int or (height, width), got '
                             f'{size!r}')
    if min(hw) < 16:
        raise ValueError(f'size must be at least 16 pixels, got {size!r}')
    return hw


_RENDERERS = {'he': render_he, 'fluo': render_fluo, 'em': render_em}


def generate_sample(domain: Union[str, DomainSpec],
                    size: Union[int, Sequence[int]] = 256,
                    seed: SeedLike = 0) -> Tuple[np.ndarray, np.ndarray]:
    """Generate one synthetic tile and its instance label map.

    Args:
        domain (str | DomainSpec): Domain name (see :func:`list_domains`) or
            a custom :class:`DomainSpec`.
        size (int | tuple[int, int]): ``S`` for ``SxS`` or ``(H, W)``.
        seed (int | np.random.SeedSequence): Seed; the output depends only
            on ``(domain, size, seed)``.

    Returns:
        tuple: ``img`` ``(H, W, 3)`` uint8 RGB and ``inst`` ``(H, W)`` int32
        with ids ``1..N`` (0 = background), each id one 4-connected region
        of at least ``spec.min_area`` pixels.

    Raises:
        KeyError: Unknown domain name.
        ValueError / TypeError: Invalid size or domain type.
    """
    spec = resolve_domain(domain)
    h, w = parse_size(size)
    rng = np.random.default_rng(seed)
    layout = make_layout(spec, h, w, rng)
    raw, table = place_instances(spec, h, w, rng, layout)
    inst, old_ids = clean_labels(raw, spec.min_area)
    table = table[old_ids]
    img = _RENDERERS[spec.modality](spec, inst, table, layout, rng)
    return img, inst.astype(np.int32)
