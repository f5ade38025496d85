"""Registry of the named synthetic domains.

:data:`DOMAINS` maps a name to a :class:`~.spec.DomainSpec`; the presets
differ in colour, morphology, density, texture, blur and noise so that
multi-domain and domain-adaptation methods have something to learn.
"""
from typing import Dict, List, Sequence, Union

import numpy as np

from .spec import DomainSpec, Float3

__all__ = [
    'RUIFROK_H', 'RUIFROK_E', 'DOMAINS', 'list_domains', 'get_domain',
    'resolve_domain'
]


def _unit(vec: Sequence[float]) -> Float3:
    """Normalise ``vec`` to unit length, rounded to 4 decimals."""
    arr = np.asarray(vec, dtype=float)
    arr = arr / np.linalg.norm(arr)
    return tuple(float(round(x, 4)) for x in arr)


# Ruifrok & Johnston (2001) H and E optical-density vectors.
RUIFROK_H = _unit((0.650, 0.704, 0.286))
RUIFROK_E = _unit((0.072, 0.990, 0.105))

_DOMAIN_LIST = [
    DomainSpec(
        name='he_kumar',
        modality='he',
        description='standard H&E, MoNuSeg-like: medium, dense, touching '
        'nuclei in nests and spindle nuclei in fibrous pink stroma',
        # Reference H/E vectors commonly used for Macenko normalisation of
        # TCGA H&E slides.
        stain_h=(0.5626, 0.7201, 0.4062),
        stain_e=(0.2159, 0.8012, 0.5581),
        i0=(250.0, 247.0, 251.0),
        radius=(6.0, 10.0),
        aspect=(1.0, 1.8),
        irregularity=0.10,
        coverage=0.30,
        cell_frac=0.55,
        cluster_prob=0.5,
        max_overlap=0.25,
        spindle_frac=0.6,
        nuc_h=1.25,
        chromatin=0.35,
        rim=0.35,
        vesicular_prob=0.25,
        stroma_e=0.85,
        cyto_e=0.45,
        cyto_h=0.2,
        fibre=0.55,
        background_frac=0.04,
        rbc_density=0.25,
        blur=0.7,
        noise=2.0),
    DomainSpec(
        name='he_tnbc',
        modality='he',
        description='pinker, paler H&E (TNBC-like): larger, sparser, '
        'rounder nuclei, more white space, Ruifrok H vector',
        stain_h=RUIFROK_H,
        stain_e=_unit((0.09, 0.88, 0.46)),
        i0=(253.0, 250.0, 250.0),
        radius=(9.0, 15.0),
        aspect=(1.0, 1.5),
        irregularity=0.08,
        coverage=0.14,
        cell_frac=0.45,
        cluster_prob=0.25,
        max_overlap=0.10,
        spindle_frac=0.3,
        nuc_h=0.85,
        nuc_h_sd=0.12,
        nuc_e=0.35,
        chromatin=0.30,
        rim=0.45,
        vesicular_prob=0.45,
        nucleolus_prob=0.5,
        stroma_e=0.70,
        stroma_h=0.03,
        cyto_e=0.40,
        cyto_h=0.08,
        fibre=0.45,
        background_frac=0.16,
        rbc_density=0.15,
        blur=0.9,
        noise=1.5),
    DomainSpec(
        name='he_cryo',
        modality='he',
        description='frozen-section H&E: strong blur, low contrast, '
        'bluish haze, swollen irregular nuclei, cracks and holes',
        stain_h=_unit((0.60, 0.70, 0.39)),
        stain_e=_unit((0.30, 0.78, 0.55)),
        i0=(244.0, 242.0, 248.0),
        radius=(7.0, 12.0),
        aspect=(1.0, 1.7),
        irregularity=0.18,
        coverage=0.22,
        cell_frac=0.5,
        cluster_prob=0.4,
        max_overlap=0.2,
        spindle_frac=0.3,
        nuc_h=0.75,
        nuc_h_sd=0.2,
        nuc_e=0.3,
        chromatin=0.15,
        rim=0.15,
        vesicular_prob=0.1,
        nucleolus_prob=0.1,
        stroma_e=0.55,
        stroma_h=0.15,
        cyto_e=0.40,
        cyto_h=0.30,
        fibre=0.25,
        background_frac=0.08,
        crack=0.04,
        rbc_density=0.1,
        hole_density=1.2,
        stain_jitter=0.1,
        blur=1.8,
        noise=3.0),
    DomainSpec(
        name='he_cpm',
        modality='he',
        description='dark purple H&E (CPM-like): small, dense, dark '
        'nuclei, purplish cytoplasm, Ruifrok-like vectors',
        stain_h=_unit((0.62, 0.72, 0.31)),
        stain_e=_unit((0.18, 0.88, 0.44)),
        i0=(248.0, 244.0, 252.0),
        radius=(4.5, 7.5),
        aspect=(1.0, 1.6),
        irregularity=0.12,
        coverage=0.34,
        cell_frac=0.65,
        cluster_prob=0.55,
        max_overlap=0.3,
        spindle_frac=0.5,
        nuc_h=1.6,
        nuc_h_sd=0.15,
        nuc_e=0.35,
        chromatin=0.3,
        rim=0.25,
        vesicular_prob=0.1,
        nucleolus_prob=0.15,
        stroma_e=0.9,
        stroma_h=0.22,
        cyto_e=0.55,
        cyto_h=0.45,
        fibre=0.4,
        background_frac=0.03,
        rbc_density=0.2,
        blur=0.6,
        noise=2.5),
    DomainSpec(
        name='fluo',
        modality='fluo',
        description='fluorescence (DSB 2018-like): grey in 3 equal '
        'channels, dark background, bright round nuclei, shot noise',
        radius=(7.0, 13.0),
        aspect=(1.0, 1.5),
        irregularity=0.06,
        coverage=0.16,
        background_frac=0.0,
        cell_frac=0.55,
        cell_contrast=0.6,
        cell_scale=80.0,
        cluster_prob=0.25,
        cluster_gap=(0.85, 1.1),
        max_overlap=0.05,
        chromatin=0.25,
        nucleolus_prob=0.3,
        bg_level=9.0,
        fg_level=(60.0, 190.0),
        colour=(1.0, 1.0, 1.0),
        blur=1.0,
        noise=1.2,
        poisson_gain=0.5),
    DomainSpec(
        name='fluo_dapi',
        modality='fluo',
        description='DAPI-stained fluorescence shown in blue: smaller, '
        'denser, more elongated nuclei, dimmer, noisier',
        radius=(5.0, 9.0),
        aspect=(1.1, 2.0),
        irregularity=0.10,
        coverage=0.24,
        background_frac=0.0,
        cell_frac=0.6,
        cell_contrast=0.5,
        cell_scale=60.0,
        cluster_prob=0.4,
        cluster_gap=(0.8, 1.05),
        max_overlap=0.1,
        chromatin=0.35,
        nucleolus_prob=0.5,
        bg_level=14.0,
        fg_level=(50.0, 170.0),
        colour=(0.1, 0.3, 1.0),
        blur=0.8,
        noise=2.5,
        poisson_gain=0.3),
    DomainSpec(
        name='em',
        modality='em',
        description='electron microscopy (grey): membranes, vesicles and '
        'granular cytoplasm; instances are mitochondria',
        radius=(7.5, 13.0),
        aspect=(1.6, 3.2),
        irregularity=0.06,
        bend=0.35,
        coverage=0.13,
        background_frac=0.0,
        cell_frac=0.5,
        cell_contrast=0.4,
        cell_scale=80.0,
        cluster_prob=0.2,
        cluster_gap=(0.95, 1.2),
        max_overlap=0.0,
        bg_level=170.0,
        fg_level=(65.0, 100.0),
        membrane=0.4,
        vesicle_density=3.0,
        blur=0.8,
        noise=9.0),
    DomainSpec(
        name='em_fibsem',
        modality='em',
        description='FIB-SEM-like EM (EPFL/Lucchi-like second EM domain): '
        'smoother, less noisy, lower contrast, larger and rounder '
        'mitochondria, fewer membranes and vesicles',
        radius=(8.5, 14.0),
        aspect=(1.2, 2.2),
        irregularity=0.08,
        bend=0.15,
        coverage=0.2,
        background_frac=0.0,
        cell_frac=0.5,
        cell_contrast=0.3,
        cell_scale=110.0,
        cluster_prob=0.1,
        cluster_gap=(1.0, 1.3),
        max_overlap=0.0,
        bg_level=150.0,
        fg_level=(80.0, 115.0),
        membrane=0.25,
        vesicle_density=1.0,
        blur=1.6,
        noise=4.0),
]

#: Registry of the named synthetic domains (name -> :class:`DomainSpec`).
DOMAINS: Dict[str, DomainSpec] = {d.name: d for d in _DOMAIN_LIST}


def list_domains() -> List[str]:
    """Return the names of the registered synthetic domains."""
    return list(DOMAINS)


def get_domain(name: str) -> DomainSpec:
    """Return the :class:`DomainSpec` registered under ``name``.

    Raises:
        KeyError: If ``name`` is unknown; the message lists valid names.
    """
    try:
        return DOMAINS[name]
    except (KeyError, TypeError):
        raise KeyError(f'unknown synthetic domain {name!r}; valid domains: '
                       f'{", ".join(DOMAINS)}') from None


def resolve_domain(domain: Union[str, DomainSpec]) -> DomainSpec:
    """Return ``domain`` itself if it is a spec, else the registered one.

    Raises:
        KeyError: If ``domain`` is an unknown name.
        TypeError: If ``domain`` is neither a name nor a
            :class:`DomainSpec`.
    """
    if isinstance(domain, DomainSpec):
        return domain
    if isinstance(domain, str):
        return get_domain(domain)
    raise TypeError(f'domain must be a name or a DomainSpec, got '
                    f'{type(domain).__name__}')
