"""Synthetic nuclei tiles with instance labels for several imaging domains.

The generator produces ``(image, instance map)`` pairs that look like small
tiles of H&E histology, fluorescence (DAPI-like) microscopy or electron
microscopy. It feeds the demo, the unit tests of every method and the
multi-domain / domain-adaptation methods, so the named domains in
:data:`DOMAINS` differ in colour, morphology, density, texture, blur and
noise in ways a network can learn.

How a sample is made (all randomness from one seeded generator):

1. **Layout.** Smooth random fields give a *cellularity* map (epithelial
   nests vs. stroma), a *tissue* mask (white space, freezing cracks) and,
   for H&E, a wavy fibre texture with its local orientation.
2. **Instances.** Star-convex shapes (an ellipse with random low-order
   Fourier perturbations of its radius) are placed one after another,
   preferring cellular regions and, with some probability, right next to an
   earlier instance so that nuclei touch or overlap. A later instance
   occludes the earlier ones (the label map keeps the top one); candidates
   that would hide more than ``max_overlap`` of an instance are rejected.
   Stromal nuclei may be spindle-shaped and aligned with the fibres.
3. **Label clean-up.** Each instance keeps only its largest 4-connected
   piece, instances smaller than ``min_area`` pixels are removed and ids are
   renumbered ``1..N``. The image is rendered *from the cleaned label map*,
   so every nucleus drawn is labelled and vice versa (a sliver cut by the
   tile border that is too small to keep is drawn as non-nuclear tissue).
4. **Rendering** by modality:

   * ``'he'`` -- Beer-Lambert: per-pixel haematoxylin / eosin / residual
     concentration maps ``C`` (``HxWx3``) are turned into optical density
     ``OD = C @ M`` with the domain's stain matrix ``M`` (rows: unit OD
     vectors of H, E and a residual channel orthogonal to both) and into
     intensity ``I = I0 * exp(-OD)``. Nuclei carry high H with chromatin
     texture, darker rims, optional nucleoli and vesicular (pale) interiors;
     stroma carries fibrous E, cytoplasm a mix; red blood cells (E-dense
     discs) and freezing holes are unlabelled distractors.
   * ``'fluo'`` -- dark background with an uneven illumination, bright
     dome-shaped nuclei with speckled chromatin and a faint out-of-focus
     glow, Poisson (shot) plus Gaussian (read) noise; written as grey in
     three equal channels or tinted (``colour``), e.g. blue for DAPI.
   * ``'em'`` -- grey electron-microscopy look: granular cytoplasm, curvy
     dark membranes (zero crossings of smooth random fields), unlabelled
     vesicles, and **mitochondria as the instances**: elongated dark bodies
     with a darker double-membrane rim and lighter cristae across the long
     axis.

5. **Acquisition**: Gaussian optical blur (per-domain sigma), Poisson and
   Gaussian noise, clipping to uint8.

Determinism: :func:`generate_sample` depends only on ``(domain, size,
seed)``; :func:`make_dataset` derives the seed of sample ``i`` from
``(seed, domain name, i)`` with :class:`numpy.random.SeedSequence`
(:func:`sample_seed`), so sample ``i`` does not depend on how many samples
are generated.

This module needs only numpy, scipy, scikit-image and OpenCV.
"""
import dataclasses
import json
import math
import os
import os.path as osp
import zlib
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
from skimage.measure import label as cc_label

from nucseg.utils.io import write_image, write_label

__all__ = [
    'DomainSpec', 'DOMAINS', 'MODALITIES', 'list_domains', 'get_domain',
    'generate_sample', 'sample_seed', 'split_counts', 'make_dataset'
]

MODALITIES = ('he', 'fluo', 'em')
SPLIT_NAMES = ('train', 'val', 'test')

Float2 = Tuple[float, float]
Float3 = Tuple[float, float, float]
SeedLike = Union[int, np.random.SeedSequence]


@dataclass(frozen=True)
class DomainSpec:
    """Frozen parameter set of one synthetic imaging domain.

    Lengths are in pixels, densities per 10,000 pixels, intensities in
    8-bit grey units unless stated. Fields not used by a modality are
    ignored (e.g. stain vectors for ``'fluo'``). Derive variants with
    :func:`dataclasses.replace`.

    Attributes:
        name (str): Domain name (key in :data:`DOMAINS`).
        modality (str): ``'he'``, ``'fluo'`` or ``'em'``.
        description (str): One-line description.
        radius (tuple[float, float]): Range of the equivalent-circle radius
            of an instance.
        aspect (tuple[float, float]): Range of the major/minor axis ratio.
        irregularity (float): Amplitude of the random Fourier perturbation
            of the radius (0 = perfect ellipses).
        coverage (float): Target fraction of the tile covered by instances
            before occlusion and rejection.
        cell_frac (float): Fraction of the tile that is cellular (nests);
            the rest is stroma / sparse background.
        cell_contrast (float): 0 places instances uniformly; 1 places them
            only in cellular regions.
        cell_scale (float): Correlation length of the cellularity field.
        cluster_prob (float): Probability that an instance is placed next
            to an existing one (touching / overlapping nuclei).
        cluster_gap (tuple[float, float]): Centre distance of such a pair
            as a fraction of the sum of the radii (< 1 overlaps).
        max_overlap (float): Largest fraction of an instance's visible
            area (and of the new instance) that a new instance may cover.
        spindle_frac (float): Probability that a nucleus in stroma is
            spindle-shaped (fibroblast-like) and aligned with the fibres.
        spindle_aspect (tuple[float, float]): Axis-ratio range of spindles.
        bend (float): Largest curvature of instances along the major axis
            (0 = straight; e.g. bean-shaped mitochondria).
        min_area (int): Smallest instance kept in the label map.
        stain_h (tuple[float, float, float]): Haematoxylin OD vector (RGB).
        stain_e (tuple[float, float, float]): Eosin OD vector (RGB).
        i0 (tuple[float, float, float]): Incident light per RGB channel.
        stain_jitter (float): Per-sample relative jitter of stain amounts
            and vectors (intra-domain variation).
        nuc_h (float): Mean haematoxylin concentration in nuclei.
        nuc_h_sd (float): Log-normal spread of the per-nucleus H level.
        nuc_e (float): Eosin concentration inside nuclei.
        chromatin (float): Strength of the chromatin texture.
        rim (float): Extra H at the nuclear border (relative).
        vesicular_prob (float): Fraction of nuclei with a pale interior.
        nucleolus_prob (float): Fraction of nuclei with a dark nucleolus.
        stroma_e (float): Eosin in stroma.
        stroma_h (float): Haematoxylin in stroma.
        cyto_e (float): Eosin in cytoplasm of cellular regions.
        cyto_h (float): Haematoxylin in cytoplasm of cellular regions.
        fibre (float): Strength of the fibrous stroma texture.
        background_frac (float): Expected fraction of white space (H&E)
            or of empty regions (fluo / em) where no instance is placed.
        crack (float): Width (relative) of freezing cracks; 0 = none.
        rbc_density (float): Red-blood-cell groups per 10,000 pixels.
        hole_density (float): Small freezing holes per 10,000 pixels.
        bg_level (float): Background grey level (fluo / em).
        fg_level (tuple[float, float]): Range of the instance grey level
            (fluo: peak brightness; em: mitochondrial matrix darkness).
        colour (tuple[float, float, float]): RGB weights of the grey signal
            (``(1, 1, 1)`` = grey in three equal channels).
        membrane (float): Darkness of membranes (em).
        vesicle_density (float): Unlabelled vesicles per 10,000 pixels
            (em).
        blur (float): Sigma of the Gaussian optical blur.
        noise (float): Sigma of additive Gaussian noise (grey units).
        poisson_gain (float): Photons per grey unit for shot noise
            (0 = no shot noise).
    """

    name: str
    modality: str
    description: str = ''
    # morphology and layout
    radius: Float2 = (6.5, 10.5)
    aspect: Float2 = (1.0, 1.7)
    irregularity: float = 0.10
    coverage: float = 0.25
    cell_frac: float = 0.5
    cell_contrast: float = 0.8
    cell_scale: float = 60.0
    cluster_prob: float = 0.4
    cluster_gap: Float2 = (0.75, 1.05)
    max_overlap: float = 0.25
    spindle_frac: float = 0.0
    spindle_aspect: Float2 = (2.2, 4.0)
    bend: float = 0.0
    min_area: int = 12
    # H&E appearance
    stain_h: Float3 = (0.5626, 0.7201, 0.4062)
    stain_e: Float3 = (0.2159, 0.8012, 0.5581)
    i0: Float3 = (255.0, 255.0, 255.0)
    stain_jitter: float = 0.06
    nuc_h: float = 1.2
    nuc_h_sd: float = 0.15
    nuc_e: float = 0.25
    chromatin: float = 0.35
    rim: float = 0.3
    vesicular_prob: float = 0.2
    nucleolus_prob: float = 0.3
    stroma_e: float = 0.75
    stroma_h: float = 0.06
    cyto_e: float = 0.4
    cyto_h: float = 0.18
    fibre: float = 0.5
    background_frac: float = 0.05
    crack: float = 0.0
    rbc_density: float = 0.3
    hole_density: float = 0.0
    # fluorescence / EM appearance
    bg_level: float = 10.0
    fg_level: Float2 = (70.0, 200.0)
    colour: Float3 = (1.0, 1.0, 1.0)
    membrane: float = 0.3
    vesicle_density: float = 0.0
    # acquisition
    blur: float = 0.7
    noise: float = 2.0
    poisson_gain: float = 0.0

    def __post_init__(self) -> None:
        if self.modality not in MODALITIES:
            raise ValueError(f'DomainSpec {self.name!r}: modality must be '
                             f'one of {MODALITIES}, got {self.modality!r}')
        for fname in ('radius', 'aspect', 'cluster_gap', 'spindle_aspect',
                      'fg_level'):
            lo, hi = getattr(self, fname)
            if not 0 < lo <= hi:
                raise ValueError(f'DomainSpec {self.name!r}: field {fname} '
                                 f'must satisfy 0 < low <= high, got '
                                 f'{(lo, hi)}')
        if self.aspect[0] < 1 or self.spindle_aspect[0] < 1:
            raise ValueError(f'DomainSpec {self.name!r}: aspect ratios '
                             'must be >= 1')
        for fname in ('coverage', 'cell_frac', 'cell_contrast', 'cluster_prob',
                      'max_overlap', 'spindle_frac', 'background_frac',
                      'vesicular_prob', 'nucleolus_prob'):
            val = getattr(self, fname)
            if not 0 <= val <= 1:
                raise ValueError(f'DomainSpec {self.name!r}: field {fname} '
                                 f'must be in [0, 1], got {val}')
        if self.min_area < 1:
            raise ValueError(f'DomainSpec {self.name!r}: min_area must be '
                             f'>= 1, got {self.min_area}')
        for fname in ('stain_h', 'stain_e'):
            vec = np.asarray(getattr(self, fname), dtype=float)
            if vec.shape != (3, ) or np.any(vec < 0) or not vec.any():
                raise ValueError(f'DomainSpec {self.name!r}: field {fname} '
                                 'must be 3 non-negative numbers, not all 0')

    def to_dict(self) -> dict:
        """Return the parameters as a JSON-serialisable dict."""
        return {
            k: list(v) if isinstance(v, tuple) else v
            for k, v in dataclasses.asdict(self).items()
        }


def _unit(vec: Sequence[float]) -> Float3:
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


def _resolve(domain: Union[str, DomainSpec]) -> DomainSpec:
    if isinstance(domain, DomainSpec):
        return domain
    if isinstance(domain, str):
        return get_domain(domain)
    raise TypeError(f'domain must be a name or a DomainSpec, got '
                    f'{type(domain).__name__}')


def _parse_size(size: Union[int, Sequence[int]]) -> Tuple[int, int]:
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


# ---------------------------------------------------------------------------
# random fields
# ---------------------------------------------------------------------------


def _smooth_field(rng: np.random.Generator, h: int, w: int,
                  scale: float) -> np.ndarray:
    """Zero-mean, unit-variance random field with correlation ~``scale``.

    White noise on a coarse grid is Gaussian-smoothed and upsampled, so the
    cost hardly depends on ``scale``.

    Returns:
        np.ndarray: ``(h, w)`` float32.
    """
    step = max(1.0, scale / 4.0)
    gh = int(math.ceil(h / step)) + 6
    gw = int(math.ceil(w / step)) + 6
    small = rng.standard_normal((gh, gw), dtype=np.float32)
    small = cv2.GaussianBlur(small, (0, 0), 2.0)
    big = cv2.resize(
        small, (int(round(gw * step)), int(round(gh * step))),
        interpolation=cv2.INTER_CUBIC)
    off = int(round(3 * step))
    out = np.ascontiguousarray(big[off:off + h, off:off + w])
    out -= out.mean()
    out /= out.std() + 1e-6
    return out


def _bandpass(rng: np.random.Generator, h: int, w: int, fine: float,
              coarse: float) -> np.ndarray:
    """Difference-of-Gaussians noise, unit variance, ``(h, w)`` float32."""
    noise = rng.standard_normal((h, w), dtype=np.float32)
    out = cv2.GaussianBlur(noise, (0, 0), fine)
    out -= cv2.GaussianBlur(noise, (0, 0), coarse)
    out /= out.std() + 1e-6
    return out


def _ridges(field: np.ndarray, width: float) -> np.ndarray:
    """Curvy line network: ``exp(-(field / width)^2)`` (zero crossings)."""
    return np.exp(-np.square(field / width))


def _fibres(rng: np.random.Generator, h: int, w: int,
            scale: float) -> Tuple[np.ndarray, np.ndarray]:
    """Wavy oriented fibre texture and its local orientation.

    Anisotropic noise is drawn in rotated coordinates ``(u, v)`` with
    ``v`` displaced by a smooth field, then sampled back with
    :func:`cv2.remap`; fibres run along iso-``v`` curves.

    Returns:
        tuple: texture ``(h, w)`` float32 (unit variance) and the fibre
        angle ``(h, w)`` float32 in radians (image x/y axes).
    """
    theta = rng.uniform(0, np.pi)
    c, s = math.cos(theta), math.sin(theta)
    disp = _smooth_field(rng, h, w, 45.0) * (0.12 * scale)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    u = xx * c + yy * s
    v = yy * c - xx * s + disp
    umin, vmin = float(u.min()), float(v.min())
    sh = int(math.ceil(float(v.max()) - vmin)) + 2
    sw = int(math.ceil(float(u.max()) - umin)) + 2
    # thin fibres plus broader bundles; the noise is smooth along u, so it
    # is drawn on a grid 4x coarser in u and interpolated by the remap
    sub = 4.0
    sw = int(math.ceil(sw / sub)) + 2
    fine = rng.standard_normal((sh, sw), dtype=np.float32)
    fine = cv2.GaussianBlur(fine, (0, 0), sigmaX=0.3 * scale / sub, sigmaY=1.0)
    coarse = rng.standard_normal((sh, sw), dtype=np.float32)
    coarse = cv2.GaussianBlur(
        coarse, (0, 0), sigmaX=0.4 * scale / sub, sigmaY=3.5)
    src = fine / (fine.std() + 1e-6) + 1.2 * coarse / (coarse.std() + 1e-6)
    tex = cv2.remap(src, (u - umin) / sub, v - vmin, cv2.INTER_LINEAR)
    tex -= tex.mean()
    tex /= tex.std() + 1e-6
    gy, gx = np.gradient(disp)
    angle = np.arctan2(s - gx, c + gy).astype(np.float32)
    return tex, angle


# ---------------------------------------------------------------------------
# layout and instances
# ---------------------------------------------------------------------------


@dataclass
class _Layout:
    cell: np.ndarray  # (h, w) float32 in [0, 1], cellularity
    tissue: np.ndarray  # (h, w) float32 in [0, 1], 0 = white space
    fibre: Optional[np.ndarray] = None  # (h, w) float32 texture
    angle: Optional[np.ndarray] = None  # (h, w) float32 fibre angle


def _norm_ppf(p: float) -> float:
    """Inverse standard normal CDF (for thresholds of unit fields)."""
    from scipy.special import ndtri
    return float(ndtri(min(max(p, 1e-6), 1 - 1e-6)))


def _make_layout(spec: DomainSpec, h: int, w: int,
                 rng: np.random.Generator) -> _Layout:
    cf = _smooth_field(rng, h, w, spec.cell_scale)
    cell = 1.0 / (1.0 + np.exp(-3.0 * (cf - _norm_ppf(1 - spec.cell_frac))))
    cell = cell.astype(np.float32)
    tissue = np.ones((h, w), np.float32)
    if spec.background_frac > 0:
        bf = _smooth_field(rng, h, w, 50.0)
        thr = _norm_ppf(spec.background_frac)
        tissue = np.clip((bf - thr) * 4.0 + 0.5, 0, 1)
    if spec.crack > 0:
        cr = _ridges(_smooth_field(rng, h, w, 70.0), spec.crack)
        tissue *= np.clip(1.6 - 2.0 * cr, 0, 1)
    layout = _Layout(cell=cell, tissue=tissue.astype(np.float32))
    if spec.modality == 'he':
        layout.fibre, layout.angle = _fibres(rng, h, w, 40.0)
    return layout


# columns of the per-instance parameter table
_CX, _CY, _R, _ASP, _THETA, _KIND, _TONE, _U1, _U2 = range(9)

_NV = 32
_PHI = np.linspace(0.0, 2 * np.pi, _NV, endpoint=False)
_COS, _SIN = np.cos(_PHI), np.sin(_PHI)
_HARM = np.arange(2, 6)  # Fourier orders of the radius perturbation
_COS_M = np.cos(_HARM[:, None] * _PHI)
_SIN_M = np.sin(_HARM[:, None] * _PHI)
_BATCH = 64  # candidates drawn per block of random numbers


def _star_polygons(r: np.ndarray, asp: np.ndarray, irregularity: float,
                   bend: np.ndarray, z: np.ndarray,
                   u: np.ndarray) -> np.ndarray:
    """Unrotated vertices ``(B, 32, 2)`` of perturbed ellipses around 0.

    The radius of an ellipse with semi-axes ``r * sqrt(asp)`` (along x)
    and ``r / sqrt(asp)`` is multiplied by ``1 + sum_m a_m cos(m phi +
    p_m)`` (``m = 2..5``, ``a_m = irregularity * z_m / m^0.7``, clipped to
    [0.6, 1.4]); ``bend`` curves the shape along its major axis
    (bean-like). ``z`` ``(B, 4)`` normals and ``u`` ``(B, 4)`` uniforms
    carry the randomness.
    """
    a = (r * np.sqrt(asp))[:, None]
    b = (r / np.sqrt(asp))[:, None]
    rho = a * b / np.sqrt((b * _COS)**2 + (a * _SIN)**2)
    if irregularity > 0:
        amp = irregularity * z / _HARM**0.7
        pha = 2 * np.pi * u
        pert = (1.0 + (amp * np.cos(pha)) @ _COS_M -
                (amp * np.sin(pha)) @ _SIN_M)
        rho = rho * np.clip(pert, 0.6, 1.4)
    x = rho * _COS
    y = rho * _SIN
    y = y + bend[:, None] * (x * x / a - 0.5 * a)
    return np.stack([x, y], axis=-1)


def _place_instances(spec: DomainSpec, h: int, w: int,
                     rng: np.random.Generator,
                     layout: _Layout) -> Tuple[np.ndarray, np.ndarray]:
    """Place star-convex instances one by one with occlusion.

    Shapes are drawn in vectorised blocks of ``_BATCH`` candidates; each
    candidate is then positioned (uniformly or next to an earlier
    instance), accepted with a probability given by the cellularity and
    tissue maps, rasterised and checked against ``max_overlap``.

    Returns:
        tuple: raw instance map ``(h, w)`` int32 (ids in paint order, not
        yet cleaned) and a parameter table ``(N + 1, 9)`` float64 whose
        row ``k`` describes id ``k`` (row 0: background, aspect 1).
    """
    inst = np.zeros((h, w), np.int32)
    r_lo, r_hi = spec.radius
    mean_area = np.pi * (r_lo**2 + r_lo * r_hi + r_hi**2) / 3.0
    n_target = int(rng.poisson(spec.coverage * h * w / mean_area))
    margin = 0.5 * r_hi
    rows = [(0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 1.0)]
    areas = [0]
    max_tries = 4 * n_target + 20
    shift = 4
    scale = float(1 << shift)
    gap_lo, gap_hi = spec.cluster_gap
    cell_map, tissue_map = layout.cell, layout.tissue
    for start in range(0, max_tries, _BATCH):
        if len(rows) - 1 >= n_target:
            break
        nb_ = min(_BATCH, max_tries - start)
        u = rng.random((nb_, 18))
        z = rng.standard_normal((nb_, 10))
        r = r_lo + (r_hi - r_lo) * u[:, 0]
        asp = spec.aspect[0] + np.diff(spec.aspect)[0] * u[:, 9]
        r_sp = r * (0.75 + 0.2 * u[:, 9])
        asp_sp = spec.spindle_aspect[0] + np.diff(
            spec.spindle_aspect)[0] * u[:, 9]
        bend = spec.bend * (2 * u[:, 10] - 1)
        shapes = _star_polygons(r, asp, spec.irregularity, bend, z[:, :4],
                                u[:, 11:15])
        spindles = None
        if spec.spindle_frac > 0:
            spindles = _star_polygons(r_sp, asp_sp, 0.5 * spec.irregularity,
                                      bend, z[:, :4], u[:, 11:15])
        for k in range(nb_):
            if len(rows) - 1 >= n_target:
                break
            uk = u[k]
            if len(rows) > 1 and uk[1] < spec.cluster_prob:
                nb = rows[1 + int(uk[2] * (len(rows) - 1))]
                ang = 2 * np.pi * uk[3]
                dist = (gap_lo + (gap_hi - gap_lo) * uk[4]) * (nb[_R] + r[k])
                cx = nb[_CX] + dist * math.cos(ang)
                cy = nb[_CY] + dist * math.sin(ang)
            else:
                cx = -margin + (w + 2 * margin) * uk[5]
                cy = -margin + (h + 2 * margin) * uk[6]
            ix = min(max(int(cx), 0), w - 1)
            iy = min(max(int(cy), 0), h - 1)
            cellv = float(cell_map[iy, ix])
            tis = float(tissue_map[iy, ix])
            accept = tis * (1.0 - spec.cell_contrast +
                            spec.cell_contrast * cellv)
            if tis < 0.5 or uk[7] >= accept:
                continue
            if spindles is not None and uk[8] < spec.spindle_frac * (1.0 -
                                                                     cellv):
                kind, rk, ak, base = 1, r_sp[k], asp_sp[k], spindles[k]
                theta = float(layout.angle[iy, ix]) + 0.15 * z[k, 4]
            else:
                kind, rk, ak, base = 0, r[k], asp[k], shapes[k]
                theta = np.pi * uk[15]
            ct, st = math.cos(theta), math.sin(theta)
            poly = base @ np.array([[ct, st], [-st, ct]])
            pmin = poly.min(0)
            pmax = poly.max(0)
            x0 = int(math.floor(cx + pmin[0])) - 1
            y0 = int(math.floor(cy + pmin[1])) - 1
            x1 = int(math.ceil(cx + pmax[0])) + 2
            y1 = int(math.ceil(cy + pmax[1])) + 2
            # clip to the image
            cx0, cy0 = max(x0, 0), max(y0, 0)
            cx1, cy1 = min(x1, w), min(y1, h)
            if cx1 - cx0 < 2 or cy1 - cy0 < 2:
                continue
            mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
            pts = ((poly + (cx - x0, cy - y0)) * scale + 0.5).astype(np.int32)
            cv2.fillPoly(mask, [pts], 1, lineType=cv2.LINE_8, shift=shift)
            sub = mask[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0].view(bool)
            area = int(np.count_nonzero(sub))
            if area < spec.min_area:
                continue
            region = inst[cy0:cy1, cx0:cx1]
            covered = region[sub]
            covered = covered[covered > 0]
            if covered.size:
                if covered.size > spec.max_overlap * area:
                    continue
                ids, counts = np.unique(covered, return_counts=True)
                pairs = list(zip(ids.tolist(), counts.tolist()))
                if any(c > spec.max_overlap * areas[i] for i, c in pairs):
                    continue
                for i, c in pairs:
                    areas[i] -= c
            region[sub] = len(rows)
            areas.append(area)
            rows.append((cx, cy, rk, ak, theta, kind, z[k, 5], uk[16], uk[17]))
    return inst, np.asarray(rows, dtype=np.float64)


def _clean_labels(inst: np.ndarray,
                  min_area: int) -> Tuple[np.ndarray, np.ndarray]:
    """Keep each id's largest 4-connected piece, drop small ids, renumber.

    Returns:
        tuple: cleaned map ``(h, w)`` int32 with ids ``1..N`` (kept in paint
        order) and ``old_ids`` ``(N + 1,)`` int64 with ``old_ids[new] =
        old`` (``old_ids[0] = 0``).
    """
    comp, ncomp = cc_label(inst, background=0, connectivity=1, return_num=True)
    if ncomp == 0:
        return np.zeros_like(inst, dtype=np.int32), np.zeros(1, np.int64)
    comp_area = np.bincount(comp.ravel(), minlength=ncomp + 1)
    parent = np.zeros(ncomp + 1, np.int64)
    parent[comp.ravel()] = inst.ravel()
    cand = np.arange(1, ncomp + 1)
    # largest piece first, then one piece per parent id
    order = cand[np.lexsort((-comp_area[cand], parent[cand]))]
    _, first = np.unique(parent[order], return_index=True)
    best = order[first]
    best = best[comp_area[best] >= min_area]
    best = best[np.argsort(parent[best], kind='stable')]
    lut = np.zeros(ncomp + 1, np.int32)
    lut[best] = np.arange(1, best.size + 1, dtype=np.int32)
    old_ids = np.concatenate([[0], parent[best]]).astype(np.int64)
    return lut[comp], old_ids


def _inner_distance(inst: np.ndarray) -> np.ndarray:
    """Distance (px) to the nearest pixel outside the own instance.

    Boundaries between touching instances count as edges; border pixels
    of an instance get 1, background 0. Returns ``(h, w)`` float32.
    """
    fg = inst > 0
    inner = fg.copy()
    inner[1:, :] &= inst[1:, :] == inst[:-1, :]
    inner[:-1, :] &= inst[:-1, :] == inst[1:, :]
    inner[:, 1:] &= inst[:, 1:] == inst[:, :-1]
    inner[:, :-1] &= inst[:, :-1] == inst[:, 1:]
    dist = cv2.distanceTransform(inner.astype(np.uint8), cv2.DIST_L2, 3)
    return dist + fg.astype(np.float32)


# ---------------------------------------------------------------------------
# renderers
# ---------------------------------------------------------------------------


def _soft(mask: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(mask.astype(np.float32), (0, 0), sigma)


def _draw_discs(rng: np.random.Generator,
                h: int,
                w: int,
                n: int,
                r_range: Float2,
                spread: float = 0.0,
                group: Tuple[int, int] = (1, 1),
                aspect: float = 1.3) -> np.ndarray:
    """Filled ellipses (groups of ``group`` around ``n`` centres).

    Returns ``(h, w)`` float32 in {0, 1}.
    """
    out = np.zeros((h, w), np.float32)
    for _ in range(n):
        gx, gy = rng.uniform(0, w), rng.uniform(0, h)
        for _ in range(int(rng.integers(group[0], group[1] + 1))):
            x = gx + rng.normal(0, spread)
            y = gy + rng.normal(0, spread)
            r = rng.uniform(*r_range)
            asp = rng.uniform(1.0, aspect)
            cv2.ellipse(out, (int(round(x * 16)), int(round(y * 16))),
                        (int(round(r * asp * 16)), int(round(r / asp * 16))),
                        rng.uniform(0, 180), 0, 360, 1.0, -1, cv2.LINE_8, 4)
    return out


def _acquire(img: np.ndarray, spec: DomainSpec,
             rng: np.random.Generator) -> np.ndarray:
    """Optical blur, shot and read noise, clip -> uint8 (same shape)."""
    if spec.blur > 0:
        img = cv2.GaussianBlur(img, (0, 0), spec.blur)
    if spec.poisson_gain > 0:
        lam = np.clip(img, 0, None) * spec.poisson_gain
        img = rng.poisson(lam).astype(np.float32) / spec.poisson_gain
    if spec.noise > 0:
        img = img + rng.standard_normal(
            img.shape, dtype=np.float32) * spec.noise
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


def _radial(inst: np.ndarray,
            table: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Inner distance and its ratio to the semi-minor axis (in [0, 1]).

    Returns:
        tuple: ``dist`` and ``rn``, both ``(h, w)`` float32.
    """
    dist = _inner_distance(inst)
    rminor = (table[:, _R] / np.sqrt(table[:, _ASP])).astype(np.float32)
    rminor[0] = 1.0
    rn = np.clip(dist / rminor[inst], 0, 1)
    return dist, rn


def _nucleoli(table: np.ndarray, ids: np.ndarray, h: int,
              w: int) -> np.ndarray:
    """Small discs near the centres of instances ``ids``.

    Returns ``(h, w)`` float32 in [0, 1] (anti-aliased).
    """
    out = np.zeros((h, w), np.float32)
    for k in ids.tolist():
        cx, cy, r, u2 = table[k, [_CX, _CY, _R, _U2]]
        off = 0.6 * r * (u2 - 0.5)  # deterministic offset from the centre
        centre = (int(round((cx + off) * 4)), int(round((cy - off) * 4)))
        radius = int(round(4 * max(1.2, 0.16 * r)))
        cv2.circle(out, centre, radius, 1.0, -1, cv2.LINE_AA, 2)
    return out


def _stain_matrix(spec: DomainSpec, rng: np.random.Generator) -> np.ndarray:
    """``3x3`` float32 rows: unit OD vectors of H, E and a residual."""
    rows = []
    for vec in (spec.stain_h, spec.stain_e):
        v = np.asarray(vec, float)
        v = v / np.linalg.norm(v)
        v = np.clip(v + rng.normal(0, 0.3 * spec.stain_jitter, 3), 0.01, 1)
        rows.append(v / np.linalg.norm(v))
    res = np.cross(rows[0], rows[1])
    res = np.abs(res) / np.linalg.norm(res)
    rows.append(res)
    return np.asarray(rows, np.float32)


def _render_he(spec: DomainSpec, inst: np.ndarray, table: np.ndarray,
               layout: _Layout, rng: np.random.Generator) -> np.ndarray:
    h, w = inst.shape
    fg = inst > 0
    fgf = fg.astype(np.float32)
    dist, rn = _radial(inst, table)
    kind = table[:, _KIND]

    # --- nuclei: haematoxylin with chromatin, rim, vesicles, nucleoli
    lev = spec.nuc_h * np.exp(spec.nuc_h_sd * table[:, _TONE])
    lev = np.where(kind == 1, lev * 1.2, lev)
    lev[0] = 0
    ves = (table[:, _U1] < spec.vesicular_prob) & (kind == 0)
    chrom = _bandpass(rng, h, w, 0.7, 2.5)
    speck = np.clip(_bandpass(rng, h, w, 0.6, 1.5), 0, None)
    hn = lev.astype(np.float32)[inst]
    tex = 1.0 + spec.chromatin * (0.7 * chrom + 0.6 * speck)
    hn *= np.clip(tex, 0.3, None)
    hn *= 1.0 + spec.rim * np.exp(-(dist - 1.0) / 1.3)
    ves_px = ves.astype(np.float32)[inst]
    hn *= 1.0 - 0.5 * ves_px * np.clip(rn * 1.6, 0, 1)
    with_nucleolus = (table[:, _U2] < spec.nucleolus_prob) & (kind == 0)
    with_nucleolus[0] = False
    if with_nucleolus.any():
        nucleoli = _nucleoli(table, np.flatnonzero(with_nucleolus), h, w)
        hn += 0.8 * spec.nuc_h * nucleoli * fgf
    hn *= fgf
    hn = cv2.GaussianBlur(hn, (0, 0), 0.6)
    fg_soft = _soft(fg, 0.7)

    # --- tissue: stroma (fibrous E), cytoplasm (E + some H), white space
    cell, tissue = layout.cell, layout.tissue
    mottle = _smooth_field(rng, h, w, 4.0)
    fib = np.clip(1.0 + spec.fibre * np.tanh(1.3 * layout.fibre), 0.15, None)
    e_t = tissue * ((1 - cell) * spec.stroma_e * fib + cell * spec.cyto_e *
                    (1 + 0.2 * mottle))
    h_t = tissue * (
        (1 - cell) * spec.stroma_h + cell * spec.cyto_h) * (1 + 0.3 * mottle)
    # red blood cells (in stroma) and freezing holes, never on nuclei
    area_units = h * w / 1e4
    not_nuc = 1.0 - np.clip(fg_soft * 2.0, 0, 1)
    if spec.rbc_density > 0:
        n = int(rng.poisson(spec.rbc_density * area_units))
        rbc = _draw_discs(rng, h, w, n, (2.5, 3.8), spread=8.0, group=(2, 10))
        rbc = _soft(rbc, 0.7) * not_nuc * tissue
        e_t = e_t * (1 - rbc) + 1.5 * rbc
    hole_mul = np.ones((h, w), np.float32)
    if spec.hole_density > 0:
        n = int(rng.poisson(spec.hole_density * area_units))
        holes = _draw_discs(rng, h, w, n, (1.5, 5.0), aspect=1.8)
        hole_mul -= 0.9 * _soft(holes, 0.8) * not_nuc

    # --- concentrations -> optical density -> intensity (Beer-Lambert)
    jit = np.exp(rng.normal(0, spec.stain_jitter, 2)).astype(np.float32)
    c_h = (h_t * (1 - 0.6 * fg_soft) + hn) * hole_mul * jit[0] + 0.02
    c_e = (e_t * (1 - 0.5 * fg_soft) + spec.nuc_e * fg_soft *
           tissue.clip(0.5, 1)) * hole_mul * jit[1] + 0.03
    c_r = 0.03 * _smooth_field(rng, h, w, 8.0)
    conc = cv2.merge([c_h, c_e, c_r])
    # OD (h, w, 3) = C (h, w, 3) @ M (3, 3); cv2.transform applies m @ px
    od = cv2.transform(conc, np.ascontiguousarray(_stain_matrix(spec, rng).T))
    img = np.exp(np.negative(od, out=od), out=od)
    img *= np.asarray(spec.i0, np.float32)
    return _acquire(img, spec, rng)


def _render_fluo(spec: DomainSpec, inst: np.ndarray, table: np.ndarray,
                 layout: _Layout, rng: np.random.Generator) -> np.ndarray:
    h, w = inst.shape
    fg = inst > 0
    _, rn = _radial(inst, table)
    lo, hi = spec.fg_level
    # per-nucleus brightness: mostly spread over [lo, hi], a few very bright
    # compact (mitotic-like) nuclei
    u = 1.0 / (1.0 + np.exp(-1.2 * table[:, _TONE]))
    lev = lo + (hi - lo) * u
    bright = table[:, _U1] < 0.05
    lev = np.where(bright, np.minimum(hi * 1.4, 250.0), lev)
    lev[0] = 0
    dome = 0.55 + 0.45 * np.sqrt(rn)
    chrom = _bandpass(rng, h, w, 0.8, 3.0)
    speck = np.clip(_bandpass(rng, h, w, 0.6, 1.6), 0, None)
    tex = np.clip(1 + spec.chromatin * (0.6 * chrom + 0.8 * speck), 0.3, None)
    tex = np.where(bright[inst], 1.0, tex)
    sig = lev.astype(np.float32)[inst] * dome * tex * fg
    with_nucleolus = (table[:, _U2] < spec.nucleolus_prob) & ~bright
    with_nucleolus[0] = False
    if with_nucleolus.any():
        # nucleoli exclude DNA: dim spots in DAPI-like images
        nucleoli = _nucleoli(table, np.flatnonzero(with_nucleolus), h, w)
        sig *= 1 - 0.4 * nucleoli
    sig = cv2.GaussianBlur(sig, (0, 0), 0.6)
    glow = cv2.GaussianBlur(sig, (0, 0), 6.0) * 0.12
    illum = 1.0 + 0.25 * _smooth_field(rng, h, w, 150.0)
    bg = spec.bg_level * np.clip(illum, 0.4, None)
    grey = (bg + sig + glow).astype(np.float32)
    grey = _acquire(grey, spec, rng).astype(np.float32)
    colour = np.asarray(spec.colour, np.float32)
    img = grey[..., None] * colour
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


def _render_em(spec: DomainSpec, inst: np.ndarray, table: np.ndarray,
               layout: _Layout, rng: np.random.Generator) -> np.ndarray:
    h, w = inst.shape
    fg = inst > 0
    fgf = fg.astype(np.float32)
    dist, _ = _radial(inst, table)
    near = _soft(
        cv2.dilate(fg.astype(np.uint8), np.ones((5, 5), np.uint8)), 1.0)
    # cytoplasm: low-frequency shading + granular texture
    grey = spec.bg_level * (1 + 0.06 * _smooth_field(rng, h, w, 120.0))
    grey += 14.0 * _bandpass(rng, h, w, 0.9, 3.0)
    # membranes: cell borders (long curvy lines) and ER (short segments)
    cells = _ridges(_smooth_field(rng, h, w, 90.0), 0.05)
    cells += 0.7 * _ridges(_smooth_field(rng, h, w, 45.0), 0.04)
    er = _ridges(_smooth_field(rng, h, w, 18.0), 0.09)
    er *= np.clip(0.8 * _smooth_field(rng, h, w, 40.0) + 0.2, 0, 1)
    memb = np.clip(cells + 0.8 * er, 0, 1) * (1 - near)
    grey -= spec.membrane * spec.bg_level * memb
    # vesicles: unlabelled rings with light lumen
    if spec.vesicle_density > 0:
        n = int(rng.poisson(spec.vesicle_density * h * w / 1e4))
        ves = _draw_discs(rng, h, w, n, (1.8, 4.0), aspect=1.2)
        ves *= 1 - near
        ring = np.clip(_soft(ves, 1.0) - ves * 0.7, 0, 1)
        grey -= 0.35 * spec.bg_level * ring
        grey += 0.1 * spec.bg_level * _soft(ves, 0.6)
    # mitochondria: dark matrix, darker double-membrane rim, light cristae
    lo, hi = spec.fg_level
    u = 1.0 / (1.0 + np.exp(-1.2 * table[:, _TONE]))
    lev = (lo + (hi - lo) * u).astype(np.float32)
    cx = table[:, _CX].astype(np.float32)[inst]
    cy = table[:, _CY].astype(np.float32)[inst]
    th = table[:, _THETA].astype(np.float32)[inst]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    along = (xx - cx) * np.cos(th) + (yy - cy) * np.sin(th)
    period = (4.5 + 2.5 * table[:, _U1]).astype(np.float32)[inst]
    phase = (2 * np.pi * table[:, _U2]).astype(np.float32)[inst]
    wob = 1.2 * _smooth_field(rng, h, w, 6.0)
    stripes = np.cos(2 * np.pi * along / period + phase + wob)
    cristae = np.clip((stripes - 0.3) / 0.7, 0, 1) * (dist > 2.5)
    mito = lev[inst] + 70.0 * cristae + 10.0 * _bandpass(rng, h, w, 0.8, 2)
    mito -= 40.0 * np.exp(-(dist - 1.0) / 1.0)
    halo = np.clip(near - fgf, 0, 1)
    grey = grey + 18.0 * halo
    # soft edges: normalised convolution of the mitochondria layer
    soft = _soft(fg, 0.6)
    mito = cv2.GaussianBlur(mito * fgf, (0, 0), 0.6) / np.maximum(soft, 1e-3)
    grey = grey * (1 - soft) + mito * soft
    grey = _acquire(grey.astype(np.float32), spec, rng)
    return np.repeat(grey[..., None], 3, axis=2)


_RENDERERS = {'he': _render_he, 'fluo': _render_fluo, 'em': _render_em}

# ---------------------------------------------------------------------------
# public API
# ---------------------------------------------------------------------------


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
    spec = _resolve(domain)
    h, w = _parse_size(size)
    rng = np.random.default_rng(seed)
    layout = _make_layout(spec, h, w, rng)
    raw, table = _place_instances(spec, h, w, rng, layout)
    inst, old_ids = _clean_labels(raw, spec.min_area)
    table = table[old_ids]
    img = _RENDERERS[spec.modality](spec, inst, table, layout, rng)
    return img, inst.astype(np.int32)


def sample_seed(seed: int, index: int, domain: str = '') -> int:
    """Seed of sample ``index`` of a data set generated with ``seed``.

    Derived with :class:`numpy.random.SeedSequence` from ``(seed,
    crc32(domain), index)``, so it does not depend on the data-set size and
    different domains get different layouts from the same ``seed``.
    """
    if seed < 0 or index < 0:
        raise ValueError(f'seed and index must be >= 0, got {seed}, {index}')
    ss = np.random.SeedSequence(
        entropy=int(seed),
        spawn_key=(zlib.crc32(domain.encode('utf-8')), int(index)))
    return int(ss.generate_state(1, dtype=np.uint64)[0])


def split_counts(num: int, ratios: Sequence[float]) -> List[int]:
    """Split ``num`` items by ``ratios`` (largest-remainder rounding).

    Every split with a positive ratio gets at least one item when ``num``
    allows it.

    Raises:
        ValueError: If the ratios are not 3 non-negative numbers summing to
            1 (within 1e-6).
    """
    ratios = [float(r) for r in ratios]
    if len(ratios) != len(SPLIT_NAMES) or min(ratios) < 0 or abs(
            sum(ratios) - 1.0) > 1e-6:
        raise ValueError(f'splits must be {len(SPLIT_NAMES)} non-negative '
                         f'ratios ({"/".join(SPLIT_NAMES)}) summing to 1, '
                         f'got {ratios}')
    exact = [r * num for r in ratios]
    counts = [int(math.floor(x)) for x in exact]
    order = sorted(range(len(ratios)), key=lambda i: (counts[i] - exact[i], i))
    for i in order[:num - sum(counts)]:
        counts[i] += 1
    positive = [i for i, r in enumerate(ratios) if r > 0]
    if num >= len(positive):
        for i in positive:
            if counts[i] == 0:
                counts[max(range(len(counts)), key=counts.__getitem__)] -= 1
                counts[i] += 1
    return counts


def make_dataset(out_dir: Union[str, os.PathLike],
                 domain: Union[str, DomainSpec],
                 num: int,
                 size: Union[int, Sequence[int]] = 256,
                 seed: int = 0,
                 splits: Sequence[float] = (0.7, 0.15, 0.15),
                 prefix: Optional[str] = None) -> dict:
    """Write a synthetic data set in the nucseg on-disk convention.

    Layout::

        out_dir/images/<name>.png     RGB uint8
        out_dir/labels/<name>.png     uint16 instance map
        out_dir/splits/{train,val,test}.txt
        out_dir/meta.json             generation parameters

    Names are ``<prefix>_<index:04d>`` (``prefix`` defaults to the domain
    name). Sample ``i`` is ``generate_sample(domain, size,
    sample_seed(seed, i, domain_name))`` whatever ``num`` is. Splits are
    contiguous blocks in index order (samples are i.i.d.): the first
    ``train`` names, then ``val``, then ``test``.

    Args:
        out_dir: Output root (created if needed; files of the same name are
            overwritten).
        domain (str | DomainSpec): Domain name or spec.
        num (int): Number of samples (>= 1).
        size (int | tuple[int, int]): Tile size ``S`` or ``(H, W)``.
        seed (int): Data-set seed (>= 0).
        splits (Sequence[float]): train/val/test ratios summing to 1.
        prefix (str, optional): Name prefix.

    Returns:
        dict: The metadata written to ``meta.json``.
    """
    spec = _resolve(domain)
    hw = _parse_size(size)
    if int(num) < 1:
        raise ValueError(f'num must be >= 1, got {num}')
    num = int(num)
    counts = split_counts(num, splits)
    prefix = spec.name if prefix is None else str(prefix)
    if not prefix or any(c in prefix for c in '/\\'):
        raise ValueError(f'prefix must be a non-empty file-name part, got '
                         f'{prefix!r}')
    out_dir = os.fspath(out_dir)
    for sub in ('images', 'labels', 'splits'):
        os.makedirs(osp.join(out_dir, sub), exist_ok=True)
    samples = []
    bounds = np.cumsum([0] + counts)
    for i in range(num):
        name = f'{prefix}_{i:04d}'
        s = sample_seed(seed, i, spec.name)
        img, inst = generate_sample(spec, hw, s)
        write_image(osp.join(out_dir, 'images', name + '.png'), img)
        write_label(osp.join(out_dir, 'labels', name + '.png'), inst)
        split = SPLIT_NAMES[int(np.searchsorted(bounds, i, side='right')) - 1]
        samples.append(
            dict(
                name=name, split=split, seed=s, num_instances=int(inst.max())))
    for split in SPLIT_NAMES:
        names = [d['name'] for d in samples if d['split'] == split]
        with open(osp.join(out_dir, 'splits', split + '.txt'), 'w') as f:
            f.write(''.join(n + '\n' for n in names))
    meta = dict(
        generator='nucseg.datasets.synthetic',
        domain=spec.name,
        modality=spec.modality,
        num=num,
        size=list(hw),
        seed=int(seed),
        split_ratios=[float(r) for r in splits],
        split_counts=dict(zip(SPLIT_NAMES, counts)),
        prefix=prefix,
        domain_params=spec.to_dict(),
        samples=samples)
    with open(osp.join(out_dir, 'meta.json'), 'w') as f:
        json.dump(meta, f, indent=2)
    return meta
