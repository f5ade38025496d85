"""Parameter set of one synthetic imaging domain (:class:`DomainSpec`).

A :class:`DomainSpec` fixes everything that makes one imaging domain look
different from another: nucleus morphology and placement, stain vectors
and concentrations (H&E), grey levels (fluorescence, EM) and acquisition
blur and noise. The named presets are in :mod:`.domains`.
"""
import dataclasses
from dataclasses import dataclass
from typing import Tuple

import numpy as np

__all__ = ['MODALITIES', 'Float2', 'Float3', 'DomainSpec']

MODALITIES = ('he', 'fluo', 'em')

Float2 = Tuple[float, float]
Float3 = Tuple[float, float, float]


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
