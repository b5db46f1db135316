"""Split-conformal prediction intervals for any point forecaster.

After training (and on `--eval`), the runner scores the tested checkpoint on the validation split and keeps, per
forecast step, the quantile of its absolute errors for each asked coverage level (per step and sensor where a sensor
has enough scored validation windows). An interval is then `forecast ± q`. With `n` scored errors, the quantile is the
`ceil((n + 1) * level) / n` one, so that on exchangeable data the interval covers a new reading with probability at
least `level`. Traffic days are not exchangeable, so the test split's empirical coverage and mean width are measured
and reported next to the metrics (`coverage` in `test_metrics.json`).

Three ways to turn errors into widths (`METHODS`, chosen by coverage on the committed sets: benchmarks/README):

- `split`: the quantile of the validation errors, per step and sensor (the classic split-conformal interval);
- `scaled`: the errors divided by each window's own spread (the mean absolute step-to-step change of its input
  readings), so a calm input gets a narrow interval and a busy one a wide one, whatever period it comes from;
- `recent`: the quantile of the errors of the latest windows whose readings are known (rolling: on the test split,
  window `i` uses the `K` windows that ended before it starts), so the width follows drift.

Whatever the method, bounds never go below the data's floor (`floor` in `calibration.json`: 0 for data that is never
negative, such as counts and speeds, or the value the user stated).

Shapes: `S` windows, `T` forecast steps, `N` sensors; errors and masks are `[S, T, N]` (missing readings masked out);
input windows `[S, T_in, N]`.
"""
from __future__ import annotations

import math
from typing import Dict, Optional, Sequence

import numpy as np

CALIBRATION_FILE = "calibration.json"
METHODS = ("split", "scaled", "recent")
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


def window_scale(inputs: np.ndarray, input_mask: np.ndarray, floor: Optional[float] = None) -> tuple[np.ndarray, float]:
    """Each window's spread `[S, N]`: the mean absolute change between its consecutive observed input readings, raised
    to `floor` (default: a tenth of the median positive spread) so that a flat window keeps a width; and that floor."""
    both = input_mask[:, 1:] & input_mask[:, :-1]
    steps = np.where(both, np.abs(np.diff(np.where(input_mask, inputs, 0.0), axis=1)), 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        spread = steps.sum(axis=1) / both.sum(axis=1)  # [S, N]; NaN without two observed readings in a row
    if floor is None:
        positive = spread[np.isfinite(spread) & (spread > 0)]
        floor = 0.1 * float(np.median(positive)) if positive.size else 1.0
    return np.where(np.isfinite(spread), np.maximum(spread, floor), floor), float(floor)


def calibrate(prediction: np.ndarray, targets: np.ndarray, mask: np.ndarray, levels: Sequence[float],
              method: str = "split", inputs: Optional[np.ndarray] = None, input_mask: Optional[np.ndarray] = None,
              floor: Optional[float] = None) -> dict:
    """The half-widths of the intervals, from forecasts whose readings are known (validation; for `recent`, the
    latest windows, oldest first).

    Args:
        prediction: Forecasts `[S, T, N]`, in data units.
        targets: The readings `[S, T, N]`.
        mask: True where a reading is scored `[S, T, N]`.
        levels: Coverage levels in (0, 1).
        method: One of `METHODS`.
        inputs: The input windows `[S, T_in, N]` (for `scaled`).
        input_mask: True where an input reading is observed `[S, T_in, N]`.
        floor: The lowest value a reading can take (bounds are raised to it), or None.

    Returns:
        `{"levels": {"0.9": {"per_step": [T], "per_sensor": [T][N]}}, "windows": S, "method": ..., "floor": ...}`;
        `per_sensor` holds the step's quantile for a sensor with too few scored windows (for `scaled`, quantiles of
        errors divided by the window's spread, and `scale_floor`).
    """
    if method not in METHODS:
        raise ValueError(f"interval method {method!r}: one of {METHODS}")
    errors = np.abs(prediction - targets)
    extra = {}
    if method == "scaled":
        scale, extra["scale_floor"] = window_scale(inputs, input_mask)
        errors = errors / scale[:, None, :]
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
            "method": method, "floor": floor, **extra}


def half_width(calibration: dict, level: float, steps: int, nodes: int, inputs: Optional[np.ndarray] = None,
               input_mask: Optional[np.ndarray] = None) -> np.ndarray:
    """The interval half-widths of one calibrated level: `[T, N]`, or `[S, T, N]` for the input windows `[S, T_in, N]`
    of the `scaled` method."""
    key = f"{level:g}"
    if key not in calibration["levels"]:
        raise KeyError(key)
    q = np.asarray(calibration["levels"][key]["per_sensor"], dtype=np.float64)
    if q.shape != (steps, nodes):
        raise ValueError(f"calibration holds {q.shape[0]} steps x {q.shape[1]} sensors, the forecast {steps} x {nodes}")
    if calibration.get("method") == "scaled":
        scale, _ = window_scale(inputs, input_mask, calibration["scale_floor"])  # [S, N]
        return q[None] * scale[:, None, :]
    return q


def interval(prediction: np.ndarray, q: np.ndarray, floor: Optional[float]) -> tuple[np.ndarray, np.ndarray]:
    """`prediction ± q`, both bounds raised to the data's floor."""
    lower, upper = prediction - q, prediction + q
    if floor is not None:
        lower, upper = np.maximum(lower, floor), np.maximum(upper, floor)
    return lower, upper


def coverage(prediction: np.ndarray, targets: np.ndarray, mask: np.ndarray, calibration: dict,
             horizons: Sequence[int], inputs: Optional[np.ndarray] = None, input_mask: Optional[np.ndarray] = None,
             history: Optional[tuple] = None) -> Dict[str, dict]:
    """Empirical coverage and mean width of each calibrated level on scored readings, overall and per horizon.

    For `recent`, each window's half-width comes from the `calibration["windows"]` windows before it whose readings
    were known when it was forecast: `history` (the calibration's forecasts, targets and mask, oldest first) followed
    by the windows of this split up to `T` windows before it.

    Returns:
        `{"0.9": {"overall": {"coverage": c, "width": w}, "horizon_3": {...}}}`.
    """
    found: Dict[str, dict] = {}
    floor = calibration.get("floor")
    for key in calibration["levels"]:
        if calibration.get("method") == "recent":
            q = rolling_half_width(prediction, targets, mask, history, float(key), int(calibration["windows"]))
        else:
            q = half_width(calibration, float(key), prediction.shape[1], prediction.shape[2], inputs, input_mask)
        lower, upper = interval(prediction, np.broadcast_to(q, prediction.shape), floor)
        inside = (targets >= lower) & (targets <= upper)  # [S, T, N]
        width = upper - lower
        groups = {"overall": slice(None), **{f"horizon_{h}": slice(h - 1, h) for h in horizons}}
        found[key] = {name: _cover(inside[:, s], width[:, s], mask[:, s]) for name, s in groups.items()}
    return found


def rolling_half_width(prediction: np.ndarray, targets: np.ndarray, mask: np.ndarray, history: tuple, level: float,
                       size: int) -> np.ndarray:
    """Half-widths `[S, T, N]` of the `recent` method: for window `i`, the conformal quantile (per step, and per sensor
    with enough scored errors) of the `size` latest windows known when it is forecast (those ending `T` windows
    before it: their readings are then in)."""
    steps = prediction.shape[1]
    errors = np.concatenate([np.abs(history[0] - history[1]), np.abs(prediction - targets)])
    scored = np.concatenate([history[2], mask])
    offset = len(history[0])
    found = np.empty(prediction.shape)
    for i in range(len(prediction)):
        end = offset + i - steps + 1  # windows before this one whose last target is at or before its last input
        start = max(0, end - size)
        found[i] = calibrate(errors[start:end], np.zeros_like(errors[start:end]), scored[start:end],
                             [level])["levels"][f"{level:g}"]["per_sensor"]
    return found


def _cover(inside: np.ndarray, width: np.ndarray, mask: np.ndarray) -> dict:
    scored = int(mask.sum())
    return {"coverage": float(inside[mask].mean()) if scored else float("nan"),
            "width": float(width[mask].mean()) if scored else float("nan")}


def bounds(forecast: np.ndarray, calibration: Optional[dict], level: float, inputs: Optional[np.ndarray] = None,
           input_mask: Optional[np.ndarray] = None) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bounds `[T, N]` of a forecast `[T, N]` from its input window `[T_in, N]` (NaN without a
    calibration), never below the data's floor."""
    if calibration is None:
        nan = np.full_like(forecast, np.nan)
        return nan, nan
    q = half_width(calibration, level, *forecast.shape, None if inputs is None else inputs[None],
                   None if input_mask is None else input_mask[None])
    return interval(forecast, q.reshape(forecast.shape), calibration.get("floor"))
