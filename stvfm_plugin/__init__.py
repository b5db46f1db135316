"""ST-VFM for BasicTS: reprogramming frozen Vision Foundation Models for spatio-temporal forecasting.

`from stvfm_plugin import STVFM, STVFMConfig, DatasetInfo` (imported on first use, so that the command-line
tools start without loading torch first).
"""
import os
import sys
from typing import Any

# OpenMP threads that wait for work sleep instead of spinning (unless the user chose otherwise): a spinning thread holds
# its core, so beside one busy process a 2-thread run's epoch took 3.1x its quiet time (ST-VFM demo, 57.3 s against
# 18.6 s), and 1.8x with waiting threads asleep (33.8 s); benchmarks/README "Shared machine". OpenMP reads this when
# torch loads: where torch was loaded first (`python -m basicts.run` imports it with BasicTS), the shim starts over.
if "OMP_WAIT_POLICY" not in os.environ:
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    WAIT_POLICY_TOO_LATE = "torch" in sys.modules
else:
    WAIT_POLICY_TOO_LATE = False

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
