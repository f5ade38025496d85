"""Exceptions raised by the data set converters.

Both ``FileNotFoundError`` subclasses and :class:`AnnotationError` (a
``ValueError``) are caught by :func:`.runner.run_cli`, which prints the
message (naming the file) instead of a traceback. A sample that fails
does not stop a conversion: the others are written and listed in the
split files, then :class:`IncompleteConversionError` lists the failures.
"""

__all__ = [
    'SourceLayoutError', 'MissingAnnotationError', 'AnnotationError',
    'IncompleteConversionError'
]


class SourceLayoutError(FileNotFoundError):
    """The source folder does not have the layout the data set uses."""


class MissingAnnotationError(FileNotFoundError):
    """An image of the source has no annotation file."""


class AnnotationError(ValueError):
    """An annotation file is malformed (bad XML, RLE, .mat content...)."""


class IncompleteConversionError(ValueError):
    """Some samples failed; the others were written and split-listed.

    Attributes:
        summary (ConversionSummary): What was written, with
            ``summary.failures`` naming each failed sample and why.
    """

    def __init__(self, message: str, summary=None) -> None:
        super().__init__(message)
        self.summary = summary
