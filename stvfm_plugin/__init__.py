"""ST-VFM for BasicTS: reprogramming frozen Vision Foundation Models for spatio-temporal forecasting.

`from stvfm_plugin import STVFM, STVFMConfig, DatasetInfo` (imported on first use, so that the command-line
tools start without loading torch first).
"""
from typing import Any

__version__ = "0.1.0"
__all__ = ["STVFM", "STVFMConfig", "DatasetInfo", "Forecaster", "build_model"]

_EXPORTS = {"STVFM": "stvfm_plugin.models.stvfm", "STVFMConfig": "stvfm_plugin.models.stvfm",
            "DatasetInfo": "stvfm_plugin.data.info", "Forecaster": "stvfm_plugin.forecaster",
            "build_model": "stvfm_plugin.models.factory"}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'stvfm_plugin' has no attribute {name!r}")
