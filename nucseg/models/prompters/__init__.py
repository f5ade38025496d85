from .spgen import SPGen

__all__ = ['SPGen']
