"""ST-VFM for BasicTS: reprogramming frozen Vision Foundation Models for spatio-temporal forecasting."""
__version__ = "0.1.0"
