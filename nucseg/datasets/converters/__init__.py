"""Converters from public nuclei data sets to nucseg's on-disk convention.

Each module reads one data set in the layout its authors distribute and
writes ``<out>/images/<name>.png``, ``<out>/labels/<name>.png`` (uint16
instance map) and ``<out>/splits/<split>.txt``. They depend on numpy,
OpenCV, SciPy and Pillow only (no torch); the command-line front ends are
``tools/dataset_converters/<format>.py``.

Shared pieces: :mod:`.errors` (exceptions), :mod:`.painting` (label maps
from masks and regions), :mod:`.layout` (finding source files, writing
samples and split files) and :mod:`.runner` (running a conversion and its
command line).
"""
from nucseg.utils.labels import relabel_sequential
from .bbbc039 import convert_bbbc039, decode_bbbc039_mask
from .cpm17 import convert_cpm17, load_mat_inst_map
from .cryonuseg import convert_cryonuseg
from .dsb2018 import convert_dsb2018, read_rle_csv, rle_decode, rle_encode
from .em_mito import (binarize_mask, convert_casser_pp, convert_em_folders,
                      convert_epfl_lucchi, convert_tiff_stack,
                      write_random_split)
from .errors import (AnnotationError, IncompleteConversionError,
                     MissingAnnotationError, SourceLayoutError)
from .kirc import convert_kirc
from .monuseg import convert_monuseg, parse_monuseg_xml, read_monuseg_regions
from .painting import (PaintReport, label_by_value, label_components,
                       paint_instances)
from .runner import ConversionSummary
from .splits import seeded_splits, write_seeded_splits
from .tcia_pancancer import convert_tcia_pancancer, read_cancer_type_table
from .tnbc import convert_tnbc

__all__ = [
    'AnnotationError', 'IncompleteConversionError', 'ConversionSummary',
    'MissingAnnotationError',
    'PaintReport', 'SourceLayoutError', 'label_by_value', 'label_components',
    'paint_instances', 'relabel_sequential', 'convert_monuseg',
    'parse_monuseg_xml', 'read_monuseg_regions', 'convert_tnbc',
    'convert_cryonuseg', 'convert_cpm17', 'load_mat_inst_map',
    'convert_bbbc039', 'decode_bbbc039_mask', 'convert_dsb2018',
    'rle_decode', 'rle_encode', 'read_rle_csv', 'binarize_mask',
    'convert_tiff_stack', 'convert_epfl_lucchi', 'convert_em_folders',
    'convert_casser_pp', 'write_random_split', 'convert_kirc',
    'convert_tcia_pancancer', 'read_cancer_type_table', 'seeded_splits',
    'write_seeded_splits'
]
