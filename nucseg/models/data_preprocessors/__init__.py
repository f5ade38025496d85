from .samda_data_preprocessor import SAMDADataPreprocessor

__all__ = ['SAMDADataPreprocessor']
