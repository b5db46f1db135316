from .stvfm_config import STVFMConfig
