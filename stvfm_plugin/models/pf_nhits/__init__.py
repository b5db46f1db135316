"""N-HiTS from pytorch-forecasting as a BasicTS baseline: `PFNHiTS` and `PFNHiTSConfig`."""
from .arch.pf_nhits_arch import PFNHiTS
from .config.pf_nhits_config import PFNHiTSConfig

__all__ = ["PFNHiTS", "PFNHiTSConfig"]
