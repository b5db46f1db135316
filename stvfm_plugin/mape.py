"""Whether MAPE means anything on a test split's scored targets (`mape_note`), said in the log, `run_info.json` and
the report."""
from __future__ import annotations

from typing import Optional

import torch

#: scored test targets kept per batch for the MAPE note (a seeded random sample: enough for shares of 1 %)
TARGET_SAMPLE = 4096


def sample_targets(scored: torch.Tensor, batch: int) -> torch.Tensor:
    """At most `TARGET_SAMPLE` of a batch's scored targets, drawn at random with a seed fixed per batch. A stride would
    alias with the node axis (a stride of 24 over 256 nodes picks every 8th node only: on a grid, its emptiest column)."""
    if len(scored) <= TARGET_SAMPLE:
        return scored
    generator = torch.Generator().manual_seed(batch)
    return scored[torch.randperm(len(scored), generator=generator)[:TARGET_SAMPLE]]
#: a scored target this close to zero, relative to the median |target|, makes MAPE explode
NEAR_ZERO = 0.01


def mape_note(targets: torch.Tensor) -> Optional[str]:
    """Why MAPE means nothing on these scored targets, or None: more than 1 % of them negative (signed data), or zero
    or near it (at most `NEAR_ZERO` x the median of the non-zero |target|: the median of all of them is 0 once half
    are zeros, which would call every target near zero), where the percentage error divides by almost nothing."""
    size = targets.abs()
    nonzero = size[size > 0]
    scale = float(nonzero.median()) if len(nonzero) else 0.0
    near_zero = float((size <= NEAR_ZERO * scale).double().mean()) if len(size) else 0.0
    negative = float((targets < 0).double().mean()) if len(targets) else 0.0
    if negative > 0.01:
        why = (f"{100 * negative:.1f} % of the scored test targets are negative (signed data), and a percentage of a "
               "signed value says nothing")
    elif near_zero > 0.01:
        why = (f"{100 * near_zero:.1f} % of the scored test targets are zero or near it (within {NEAR_ZERO:g} x the "
               "median non-zero |target|), where the percentage error divides by almost nothing")
    else:
        return None
    return f"not meaningful on this data: {why}; compare MAE and RMSE"


