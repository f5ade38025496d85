from .sam_projector import SAMEmbeddingProjector

__all__ = ['SAMEmbeddingProjector']
