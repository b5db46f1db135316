"""Masked metrics that never score a non-finite prediction as a perfect one.

BasicTS 1.1.0's masked metrics end in `torch.nan_to_num(loss)`: a NaN prediction contributes an error of 0, so a
diverged model scores MAE 0.000 and validation picks its NaN epoch as the best. `honest(metric)` returns NaN instead
whenever a scored reading (mask on) has a non-finite prediction; the runner then stops a training run whose loss is
not finite (`diverged`) and counts the non-finite test predictions.
"""
from __future__ import annotations

import functools
from typing import Callable, Optional

import torch


def nonfinite_scored(prediction: torch.Tensor, targets_mask: Optional[torch.Tensor] = None) -> int:
    """How many scored readings (mask on; all without a mask) have a non-finite prediction."""
    bad = ~torch.isfinite(prediction)
    if targets_mask is not None:
        bad = bad & targets_mask.bool()
    return int(bad.sum())


def honest(metric: Callable) -> Callable:
    """`metric(prediction, targets, targets_mask)`, but NaN when a scored prediction is not finite."""

    @functools.wraps(metric)  # BasicTS reads the signature and the name
    def scored(prediction: torch.Tensor, targets: torch.Tensor, targets_mask: Optional[torch.Tensor] = None
               ) -> torch.Tensor:
        value = metric(prediction, targets, targets_mask)
        return value.new_tensor(float("nan")) if nonfinite_scored(prediction, targets_mask) else value

    return scored
