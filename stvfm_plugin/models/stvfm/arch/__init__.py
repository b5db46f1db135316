from .stvfm_arch import STVFM
