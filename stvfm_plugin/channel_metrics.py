"""Metrics per channel of a dataset prepared one series per (node, channel) (`data.layout.channels_as_series`).

The series are node-major (series `n * C + c` is channel `c` of node `n`), so channel `c` is every `C`-th series from
`c`. The metrics are BasicTS's masked MAE / RMSE / MAPE, as overall: a trained run (`runner`) and a naive reference
(`references`) are scored alike.

Shapes: predictions, targets and masks `[S, T, N * C]`.
"""
from __future__ import annotations

from typing import Dict, Optional, Sequence

import numpy as np


def per_channel(prediction: np.ndarray, targets: np.ndarray, mask: np.ndarray,
                names: Optional[Sequence[str]]) -> Dict[str, Dict[str, float]]:
    """`{"channel_<name>": {"MAE", "RMSE", "MAPE"}}` (empty for a dataset of one channel)."""
    import torch
    from basicts.metrics import masked_mae, masked_mape, masked_rmse

    if not names:
        return {}
    found = {}
    for c, name in enumerate(names):
        p, t, m = (torch.from_numpy(np.ascontiguousarray(a[..., c::len(names)])) for a in (prediction, targets, mask))
        p, t = p.double(), t.double()
        found[f"channel_{name}"] = {key: float(f(p, t, m)) for key, f in
                                    (("MAE", masked_mae), ("RMSE", masked_rmse), ("MAPE", masked_mape))}
    return found
