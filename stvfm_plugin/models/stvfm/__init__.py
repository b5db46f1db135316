"""ST-VFM: `STVFM` (the model BasicTS builds) and `STVFMConfig`."""
from .arch.stvfm_arch import STVFM
from .config.stvfm_config import STVFMConfig

__all__ = ["STVFM", "STVFMConfig"]
