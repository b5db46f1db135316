"""GPT4TS / One-Fits-All: `GPT4TS` (the model BasicTS builds) and `GPT4TSConfig`."""
from .arch.gpt4ts_arch import GPT4TS
from .config.gpt4ts_config import GPT4TSConfig

__all__ = ["GPT4TS", "GPT4TSConfig"]
