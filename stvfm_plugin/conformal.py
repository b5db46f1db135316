"""Split-conformal prediction intervals for any point forecaster.

After training (and on `--eval`), the runner scores the tested checkpoint on the validation split and keeps, per
forecast step, the quantile of its absolute errors for each asked coverage level (per step and sensor where a sensor
has enough scored validation windows). An interval is then `forecast ± q`. With `n` scored errors, the quantile is the
`ceil((n + 1) * level) / n` one, so that on exchangeable data the interval covers a new reading with probability at
least `level`. Traffic days are not exchangeable, so the test split's empirical coverage and mean width are measured
and reported next to the metrics (`coverage` in `test_metrics.json`).

Shapes: `S` windows, `T` forecast steps, `N` sensors; errors and masks are `[S, T, N]` (missing readings masked out).
"""
from __future__ import annotations

import math
from typing import Dict, Optional, Sequence

import numpy as np

CALIBRATION_FILE = "calibration.json"
#: scored validation windows a sensor needs (per step) for its own quantile; else it takes the step's quantile
MIN_WINDOWS_PER_SENSOR = 100
DEFAULT_LEVELS = (0.9,)


def _quantile(errors: np.ndarray, level: float) -> float:
    """The conformal quantile of a 1-D array of absolute errors (inf when too few errors for the level)."""
    n = len(errors)
    rank = math.ceil((n + 1) * level)
    if n == 0 or rank > n:
        return float("inf")
    return float(np.partition(errors, rank - 1)[rank - 1])


def calibrate(prediction: np.ndarray, targets: np.ndarray, mask: np.ndarray, levels: Sequence[float]) -> dict:
    """The half-widths of the intervals, from validation forecasts.

    Args:
        prediction: Validation forecasts `[S, T, N]`, in data units.
        targets: The readings `[S, T, N]`.
        mask: True where a reading is scored `[S, T, N]`.
        levels: Coverage levels in (0, 1).

    Returns:
        `{"levels": {"0.9": {"per_step": [T], "per_sensor": [T][N]}}, "windows": S, "min_windows_per_sensor": ...}`;
        `per_sensor` holds the step's quantile for a sensor with too few scored windows.
    """
    errors = np.abs(prediction - targets)
    found = {}
    for level in levels:
        steps, per_sensor = [], []
        for t in range(errors.shape[1]):
            step_errors = errors[:, t][mask[:, t]]
            step_q = _quantile(step_errors, level)
            steps.append(step_q)
            row = []
            for n in range(errors.shape[2]):
                own = errors[:, t, n][mask[:, t, n]]
                row.append(_quantile(own, level) if len(own) >= MIN_WINDOWS_PER_SENSOR else step_q)
            per_sensor.append(row)
        found[f"{level:g}"] = {"per_step": steps, "per_sensor": per_sensor}
    return {"levels": found, "windows": int(errors.shape[0]), "min_windows_per_sensor": MIN_WINDOWS_PER_SENSOR,
            "method": "split conformal on validation absolute errors, per forecast step and sensor"}


def half_width(calibration: dict, level: float, steps: int, nodes: int) -> np.ndarray:
    """The interval half-widths `[T, N]` of one calibrated level."""
    key = f"{level:g}"
    if key not in calibration["levels"]:
        raise KeyError(key)
    q = np.asarray(calibration["levels"][key]["per_sensor"], dtype=np.float64)
    if q.shape != (steps, nodes):
        raise ValueError(f"calibration holds {q.shape[0]} steps x {q.shape[1]} sensors, the forecast {steps} x {nodes}")
    return q


def coverage(prediction: np.ndarray, targets: np.ndarray, mask: np.ndarray, calibration: dict,
             horizons: Sequence[int]) -> Dict[str, dict]:
    """Empirical coverage and mean width of each calibrated level on scored readings, overall and per horizon.

    Returns:
        `{"0.9": {"overall": {"coverage": c, "width": w}, "horizon_3": {...}}}`.
    """
    found: Dict[str, dict] = {}
    for key in calibration["levels"]:
        q = half_width(calibration, float(key), prediction.shape[1], prediction.shape[2])[None]  # [1, T, N]
        inside = np.abs(prediction - targets) <= q  # [S, T, N]
        width = np.broadcast_to(2 * q, prediction.shape)
        groups = {"overall": slice(None), **{f"horizon_{h}": slice(h - 1, h) for h in horizons}}
        found[key] = {name: _cover(inside[:, s], width[:, s], mask[:, s]) for name, s in groups.items()}
    return found


def _cover(inside: np.ndarray, width: np.ndarray, mask: np.ndarray) -> dict:
    scored = int(mask.sum())
    return {"coverage": float(inside[mask].mean()) if scored else float("nan"),
            "width": float(width[mask].mean()) if scored else float("nan")}


def bounds(forecast: np.ndarray, calibration: Optional[dict], level: float) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bounds `[T, N]` of a forecast `[T, N]` (NaN without a calibration)."""
    if calibration is None:
        nan = np.full_like(forecast, np.nan)
        return nan, nan
    q = half_width(calibration, level, *forecast.shape)
    return forecast - q, forecast + q
