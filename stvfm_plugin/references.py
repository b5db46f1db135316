"""Naive references: forecasts that learn nothing, scored on the test windows and masks every model is scored on.

    Persistence     every future step repeats the last input reading (the last one not missing, per sensor)
    SeasonalDay     each future step copies the reading one day earlier
    SeasonalWeek    each future step copies the reading one week earlier
    SeasonalMedian  each future step is the median of the readings one, two and three weeks earlier (`protocols.
                    BASE_WEEKS`): what a `weeks-residual` model's output is added to
    HistoricalMean  the training split's mean per sensor and time of week (time of day where a slot of the week
                    never occurs in training, the sensor's mean where neither does)

A seasonal copy whose source reading is missing falls back to persistence. A leaderboard lists them as rows
(`--models Persistence SeasonalDay ...`), so that a model which does not beat them is seen at a glance.

Command line (what the leaderboard launches for these rows):
`python -m stvfm_plugin.references --dataset NAME --method Persistence --run-dir DIR` writes `test_metrics.json`,
`run_info.json`, `cfg.json` and `status.json` into DIR, as a trained run does.
"""
from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from .channel_metrics import per_channel
from .errors import UserError, exit_status
from .protocols import BASE_WEEKS, HISTORIES, history_input_len
from .basicts_compat.null_value import basicts_null_val
from .records import RunState, StopReason

#: what each reference does, for the log and the report
REFERENCES: Dict[str, str] = {
    "Persistence": "the last input reading, repeated",
    "SeasonalDay": "the reading one day earlier",
    "SeasonalWeek": "the reading one week earlier",
    "SeasonalMedian": f"the median of the readings 1 to {BASE_WEEKS} weeks earlier",
    "HistoricalMean": "the training mean per sensor and time of week",
}


def _missing(values: np.ndarray, null_val: Optional[float]) -> np.ndarray:
    """Where readings are missing: NaN, or within BasicTS's tolerance of the null value."""
    missing = np.isnan(values)
    if null_val is not None:
        missing |= np.isclose(values, null_val, atol=5e-5)
    return missing


def _last_readings(inputs: np.ndarray, missing: np.ndarray) -> np.ndarray:
    """The last reading of each window and sensor that is not missing (0 where the whole window is missing).

    Shapes:
        inputs, missing: [W, T, N] -> [W, N]
    """
    seen = ~missing
    last = inputs.shape[1] - 1 - np.argmax(seen[:, ::-1], axis=1)  # [W, N]: index of the last reading seen
    values = np.take_along_axis(inputs, last[:, None], axis=1)[:, 0]
    return np.where(seen.any(axis=1), values, 0.0)


def _week_slots(timestamps: np.ndarray, steps_per_day: int) -> np.ndarray:
    """Slot of the week `[0, 7 * steps_per_day)` of each step, from BasicTS's time-of-day / day-of-week fractions."""
    tod = np.clip(np.round(timestamps[:, 0] * steps_per_day), 0, steps_per_day - 1).astype(int)
    dow = np.clip(np.round(timestamps[:, 1] * 7), 0, 6).astype(int)
    return dow * steps_per_day + tod


def _historical_mean(series: np.ndarray, missing: np.ndarray, slots: np.ndarray, train_len: int,
                     steps_per_day: int, train_from: int = 0) -> np.ndarray:
    """Training mean per (slot of the week, sensor), falling back to time of day, then to the sensor's mean, over the
    training steps from `train_from` (a share of the training split: `--train-fraction`).

    Shapes:
        series, missing: [L, N], slots: [L] -> table [7 * steps_per_day, N]
    """
    kept = slice(train_from, train_len)
    values = np.where(missing[kept], 0.0, series[kept])
    counts = (~missing[kept]).astype(float)
    sensor = values.sum(0) / np.maximum(counts.sum(0), 1)  # [N]

    def by(keys: np.ndarray, size: int) -> tuple:
        total, n = np.zeros((size, series.shape[1])), np.zeros((size, series.shape[1]))
        np.add.at(total, keys, values)
        np.add.at(n, keys, counts)
        return total, n

    week_total, week_n = by(slots[kept], 7 * steps_per_day)
    day_total, day_n = by(slots[kept] % steps_per_day, steps_per_day)
    day = np.where(day_n > 0, day_total / np.maximum(day_n, 1), sensor)  # [steps_per_day, N]
    return np.where(week_n > 0, week_total / np.maximum(week_n, 1), np.tile(day, (7, 1)))


def reference_forecasts(method: str, series: np.ndarray, split_lengths: Sequence[int], input_len: int, output_len: int,
                        null_val: Optional[float], steps_per_day: Optional[int], timestamps: Optional[np.ndarray],
                        train_from: int = 0) -> tuple:
    """Forecasts and targets of the test split's windows (BasicTS's: every start, stride 1, within the split).

    Args:
        series: The whole series, train, validation and test splits in order, `[L, N]`.
        split_lengths: Lengths of the train, validation and test splits.
        train_from: The first training step the historical mean learns from (the others learn nothing).

    Returns:
        predictions and targets `[W, output_len, N]`.
    """
    train_len, val_len, test_len = split_lengths
    start = train_len + val_len
    windows = test_len - input_len - output_len + 1
    if windows < 1:
        raise UserError(f"The test split ({test_len} steps) holds no window of {input_len} + {output_len} steps.")
    firsts = start + np.arange(windows)  # [W]: the first input step of each window
    future = firsts[:, None] + input_len + np.arange(output_len)  # [W, H]: the steps forecast
    missing = _missing(series, null_val)
    targets = series[future]  # [W, H, N]
    inputs_at = firsts[:, None] + np.arange(input_len)  # [W, T]
    persistence = _last_readings(series[inputs_at], missing[inputs_at])  # [W, N]
    if method == "Persistence":
        return np.repeat(persistence[:, None], output_len, axis=1), targets
    if method in ("SeasonalDay", "SeasonalWeek"):
        if not steps_per_day:
            raise UserError(f"{method} needs a step of a day or less (the dataset's steps do not divide a day).")
        period = steps_per_day * (1 if method == "SeasonalDay" else 7)
        if future.min() - period < 0:
            raise UserError(f"{method}: the data do not reach {'one day' if period == steps_per_day else 'one week'} "
                            f"before the test split's first forecast ({future.min()} steps of history, {period} needed).")
        source = future - period
        return np.where(missing[source], persistence[:, None], series[source]), targets
    if method == "SeasonalMedian":
        if not steps_per_day:
            raise UserError(f"{method} needs a step of a day or less (the dataset's steps do not divide a day).")
        week = 7 * steps_per_day
        if future.min() - BASE_WEEKS * week < 0:
            raise UserError(f"{method}: the data do not reach {BASE_WEEKS} weeks before the test split's first forecast "
                            f"({future.min()} steps of history, {BASE_WEEKS * week} needed).")
        copies = np.stack([series[future - k * week] for k in range(1, BASE_WEEKS + 1)])  # [K, W, H, N]
        copies[np.stack([missing[future - k * week] for k in range(1, BASE_WEEKS + 1)])] = np.nan
        with warnings.catch_warnings():  # a step whose copies are all missing is NaN here: persistence below
            warnings.simplefilter("ignore", RuntimeWarning)
            median = np.nanmedian(copies, axis=0)  # [W, H, N]: of the copies not missing
        return np.where(np.isnan(median), persistence[:, None], median), targets
    if method == "HistoricalMean":
        if not steps_per_day or timestamps is None:
            raise UserError("HistoricalMean needs time-of-day stamps (a step of a day or less).")
        slots = _week_slots(timestamps, steps_per_day)
        table = _historical_mean(series, missing, slots, train_len, steps_per_day, train_from)
        return table[slots[future]], targets
    raise UserError(f"No reference {method!r}; known: {', '.join(REFERENCES)}.")


def score(predictions: np.ndarray, targets: np.ndarray, null_val: Optional[float], horizons: Sequence[int]) -> dict:
    """BasicTS's masked MAE / RMSE / MAPE overall and at each horizon (1-based), as `test_metrics.json` holds them.

    Over all windows at once, which is what BasicTS's meters give (each batch weighted by its scored readings)."""
    import torch
    from basicts.metrics import masked_mae, masked_mape, masked_rmse

    metrics: Dict[str, Callable] = {"MAE": masked_mae, "RMSE": masked_rmse, "MAPE": masked_mape}
    pred, true = torch.from_numpy(predictions).double(), torch.from_numpy(targets).double()
    mask = ~torch.from_numpy(_missing(targets, null_val))
    found = {"overall": {k: float(f(pred, true, mask)) for k, f in metrics.items()}}
    for h in horizons:
        found[f"horizon_{h}"] = {k: float(f(pred[:, h - 1], true[:, h - 1], mask[:, h - 1])) for k, f in metrics.items()}
    return found


def _prepared(dataset: str):
    """The `DatasetInfo` of `dataset`, generating it first when it is a synthetic set's name (as a run does)."""
    from .data.info import DatasetInfo, dataset_folder
    from .data.layout import META_FILE
    from .data.synth import synthetic_options

    folder, synth = dataset_folder(dataset), synthetic_options(dataset)
    if synth is not None and not (folder / META_FILE).is_file():
        from .data.synth import synth_dataset

        synth_dataset(folder.parent, folder.name, synth, overwrite=folder.exists())
    return DatasetInfo.load(dataset)


def applicable_references(dataset: str, input_len: int = 12) -> List[str]:
    """The references the prepared `dataset` allows: the seasonal ones where the history before the test split's first
    forecast reaches a day / a week back, the historical mean where steps have a time of day."""
    info = _prepared(dataset)
    day = info.steps_per_day
    first = info.split_lengths.get("train", 0) + info.split_lengths.get("val", 0) + input_len
    reach = {"Persistence": True, "SeasonalDay": bool(day) and first >= day, "SeasonalWeek": bool(day) and first >= 7 * day,
             "SeasonalMedian": bool(day) and first >= BASE_WEEKS * 7 * day, "HistoricalMean": bool(day)}
    return [name for name in REFERENCES if reach[name]]


def run_reference(dataset: str, method: str, run_dir: Path, input_len: int = 12, output_len: int = 12,
                  horizons: Sequence[int] = (3, 6, 12), train_fraction: Optional[float] = None) -> dict:
    """Score `method` on the prepared `dataset` and write its run folder; returns the test metrics. `train_fraction`:
    the historical mean learns from the most recent share of the training split (the other references learn
    nothing from it: the same numbers at every share)."""
    from .status import write_status

    if method not in REFERENCES:
        raise UserError(f"No reference {method!r}; known: {', '.join(REFERENCES)}.")
    info = _prepared(dataset)
    folder = info.folder
    splits = ("train", "val", "test")
    series = np.concatenate([np.load(folder / f"{s}_data.npy") for s in splits])
    series = series[..., 0] if series.ndim == 3 else series  # [L, N]: the first channel, as the models forecast
    stamps = [folder / f"{s}_timestamps.npy" for s in splits]
    timestamps = np.concatenate([np.load(p) for p in stamps]) if all(p.is_file() for p in stamps) else None
    train_len = info.split_lengths["train"]
    train_from = 0
    if train_fraction is not None:
        from .data.train_share import train_share

        train_from = train_len - train_share(info, train_fraction, input_len, output_len, 1).steps
    started = time.perf_counter()
    predictions, targets = reference_forecasts(method, series, [info.split_lengths[s] for s in splits], input_len,
                                               output_len, info.null_val, info.steps_per_day, timestamps, train_from)
    metrics = score(predictions, targets, info.null_val, horizons)
    metrics.update(per_channel(predictions, targets, ~_missing(targets, info.null_val), info.channel_names))
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "test_metrics.json").write_text(json.dumps(metrics, indent=4))
    (run_dir / "cfg.json").write_text(json.dumps({
        "dataset_name": dataset, "null_val": basicts_null_val(info.null_val), "rescale": True, "metrics": list(metrics["overall"]),
        "eval_horizons": list(horizons), "dataset_params": {"dataset_name": dataset, "input_len": input_len,
                                                            "output_len": output_len}}))
    (run_dir / "run_info.json").write_text(json.dumps({
        "model": method, "dataset": dataset, "input_len": input_len, "output_len": output_len, "epochs_run": 0,
        "seconds_per_epoch": [], "trainable_params": 0, "total_params": 0, "tested": True,
        "stop_reason": StopReason.NOTHING_TO_TRAIN, "converged": True, "test_windows": int(predictions.shape[0]),
        "inference_ms_per_batch": None, "build_report": [f"Naive reference {method}: {REFERENCES[method]}"],
        "scoring_seconds": time.perf_counter() - started,
        **({"train_fraction": train_fraction, "train_steps": train_len - train_from} if train_fraction is not None
           else {})}, indent=2))
    write_status(run_dir, state=RunState.FINISHED, epoch=0, stop_reason=StopReason.NOTHING_TO_TRAIN, converged=True)
    return metrics


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stvfm_plugin.references", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", required=True, help="the prepared dataset")
    parser.add_argument("--method", required=True, choices=list(REFERENCES))
    parser.add_argument("--run-dir", required=True, help="where to write the run folder")
    parser.add_argument("--history", choices=HISTORIES, default="recent",
                        help="the windows of the models it is compared with: recent (12 steps in) or week (a week in)")
    parser.add_argument("--train-fraction", type=float, metavar="F",
                        help="the historical mean learns from the most recent share F of the training split (the "
                             "others learn nothing from it)")
    args = parser.parse_args(argv)

    def action() -> None:
        week = history_input_len(args.history, _prepared(args.dataset).step_minutes)
        metrics = run_reference(args.dataset, args.method, Path(args.run_dir), input_len=week or 12,
                                train_fraction=args.train_fraction)
        print(f"{args.method} on {args.dataset}: test MAE {metrics['overall']['MAE']:.4f}, RMSE "
              f"{metrics['overall']['RMSE']:.4f} ({REFERENCES[args.method]})", flush=True)

    return exit_status(action)


if __name__ == "__main__":
    raise SystemExit(main())
