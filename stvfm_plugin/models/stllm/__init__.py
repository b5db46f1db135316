"""ST-LLM: `STLLM` (the model BasicTS builds) and `STLLMConfig`."""
from .arch.stllm_arch import STLLM
from .config.stllm_config import STLLMConfig

__all__ = ["STLLM", "STLLMConfig"]
