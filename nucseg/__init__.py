"""nucseg: domain-adaptive nuclei segmentation with SAM on OpenMMLab."""
from .version import __version__, version_info

__all__ = ['__version__', 'version_info']
