"""DeepAR from pytorch-forecasting as a BasicTS baseline: `PFDeepAR` and `PFDeepARConfig`."""
from .arch.pf_deepar_arch import PFDeepAR
from .config.pf_deepar_config import PFDeepARConfig

__all__ = ["PFDeepAR", "PFDeepARConfig"]
