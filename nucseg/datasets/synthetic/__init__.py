"""Synthetic nuclei tiles with instance labels for several imaging domains.

The generator produces ``(image, instance map)`` pairs that look like small
tiles of H&E histology, fluorescence (DAPI-like) microscopy or electron
microscopy. It feeds the demo, the unit tests of every method and the
multi-domain / domain-adaptation methods, so the named domains in
:data:`DOMAINS` differ in colour, morphology, density, texture, blur and
noise in ways a network can learn.

How a sample is made (all randomness from one seeded generator):

1. **Layout** (:mod:`.layout`, random fields in :mod:`.fields`):
   cellularity, tissue mask and, for H&E, fibres.
2. **Instances** (:mod:`.instances`): star-convex shapes placed one after
   another with occlusion and an overlap limit; stromal nuclei may be
   spindle-shaped and aligned with the fibres.
3. **Label clean-up** (:mod:`.instances`): each instance keeps its largest
   4-connected piece, instances smaller than ``min_area`` pixels are
   removed, ids are renumbered ``1..N``. The image is rendered *from the
   cleaned label map*, so every nucleus drawn is labelled and vice versa.
4. **Rendering** by modality: :mod:`.render_he` (Beer-Lambert stain
   model), :mod:`.render_fluo` (bright nuclei on a dark background),
   :mod:`.render_em` (grey EM; the instances are mitochondria).
5. **Acquisition** (:mod:`.render_common`): Gaussian optical blur
   (per-domain sigma), Poisson and Gaussian noise, clipping to uint8.

Determinism: :func:`generate_sample` depends only on ``(domain, size,
seed)``; :func:`make_dataset` derives the seed of sample ``i`` from
``(seed, domain name, i)`` with :class:`numpy.random.SeedSequence`
(:func:`sample_seed`), so sample ``i`` does not depend on how many samples
are generated.

Modules: :mod:`.spec` (:class:`DomainSpec`), :mod:`.domains` (named
presets), :mod:`.generator` (one sample), :mod:`.writer` (a data set on
disk). This package needs only numpy, scipy, scikit-image and OpenCV.
"""
from .domains import DOMAINS, RUIFROK_E, RUIFROK_H, get_domain, list_domains
from .generator import SeedLike, generate_sample
from .spec import MODALITIES, DomainSpec, Float2, Float3
from .writer import SPLIT_NAMES, make_dataset, sample_seed, split_counts

__all__ = [
    'DomainSpec', 'DOMAINS', 'MODALITIES', 'list_domains', 'get_domain',
    'generate_sample', 'sample_seed', 'split_counts', 'make_dataset',
    'SPLIT_NAMES', 'RUIFROK_H', 'RUIFROK_E', 'Float2', 'Float3', 'SeedLike'
]
