"""Graph WaveNet: `GWNet` (the model BasicTS builds) and `GWNetConfig`."""
from .arch.gwnet_arch import GWNet
from .config.gwnet_config import GWNetConfig

__all__ = ["GWNet", "GWNetConfig"]
