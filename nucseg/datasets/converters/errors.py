"""Exceptions raised by the data set converters.

Both ``FileNotFoundError`` subclasses and :class:`AnnotationError` (a
``ValueError``) are caught by :func:`.runner.run_cli`, which prints the
message (naming the file) instead of a traceback.
"""

__all__ = ['SourceLayoutError', 'MissingAnnotationError', 'AnnotationError']


class SourceLayoutError(FileNotFoundError):
    """The source folder does not have the layout the data set uses."""


class MissingAnnotationError(FileNotFoundError):
    """An image of the source has no annotation file."""


class AnnotationError(ValueError):
    """An annotation file is malformed (bad XML, RLE, .mat content...)."""
