"""ST-VFM for BasicTS: reprogramming frozen Vision Foundation Models for spatio-temporal forecasting.

`from stvfm_plugin import STVFM, STVFMConfig, DatasetInfo` (imported on first use, so that the command-line
tools start without loading torch first).
"""
import os
import sys
from typing import Any

# OpenMP threads that wait for work sleep instead of spinning (unless the user chose otherwise). A spinning thread holds
# its core: beside one busy single-threaded process, a 2-thread ST-VFM demo epoch took 171.8 s with libgomp's default
# spin, 55.4 s with OMP_WAIT_POLICY=ACTIVE and 34.5 s with PASSIVE, against 16.8-17.8 s alone; alone, PASSIVE costs
# 20-40 % (20.5-24.2 s). benchmarks/README "Shared machine". OpenMP reads this when torch loads: where torch was loaded
# first (`python -m basicts.run` imports it with BasicTS), the shim starts the command over.
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
