"""The null value as BasicTS 1.1.0 takes it.

In this plugin `null_val` has one meaning everywhere (`DatasetInfo.null_val`, `meta.json`, `--set null_val=...`): a
number marks a missing reading (masked in loss and metrics), None means every reading is data. BasicTS's config holds
a float and marks "every reading is data" with NaN (its masks compare with `isnan` then); `basicts_null_val` is the
one place that translates, when the dataset is bound to the config.
"""
from __future__ import annotations

import math
from typing import Optional


def basicts_null_val(null_val: Optional[float]) -> float:
    """`null_val` for a BasicTS config: the number, or NaN for None (every reading is data)."""
    return float("nan") if null_val is None else float(null_val)


def plugin_null_val(value: Optional[float]) -> Optional[float]:
    """A BasicTS config's (or an older `meta.json`'s) null value in the plugin's meaning: NaN becomes None."""
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)
