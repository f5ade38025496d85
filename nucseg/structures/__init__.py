from .nuclei_data_sample import NucleiDataSample

__all__ = ['NucleiDataSample']
