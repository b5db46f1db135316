"""`Forecaster`: a trained run's model, asked for the steps after the latest readings, with calibrated intervals.

    from stvfm_plugin import Forecaster
    forecaster = Forecaster.load("checkpoints/STID/.../20261205-101500")   # a run folder (or its checkpoint)
    table = forecaster.forecast()                      # the steps after the prepared data's last reading
    table = forecaster.forecast(readings, end="2012-03-08 00:00")   # or after readings of your own

The model, scaler and calendar features are exactly the run's: the forecast goes through the same BasicTS task flow
as the run's test (normalise, model, scale back), so on the test split's windows it gives the run's saved test
predictions. The bounds come from the run's `calibration.json` (split conformal on the validation split).
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import os
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from .conformal import CALIBRATION_FILE, bounds
from .data.layout import DATA_FILES, make_timestamps
from .errors import UserError
from .run_options import RECORD_FILE, RunOptions
from .trained_on import check_same_dataset


class Forecaster:
    """A trained model with its dataset's scaler, calendar and sensor ids, and its calibrated intervals."""

    def __init__(self, runner, calibration: Optional[dict], checkpoint: Path) -> None:
        self.runner = runner
        self.dataset = runner.dataset
        self.calibration = calibration
        self.checkpoint = checkpoint
        self.input_len, self.output_len = int(runner.cfg.input_len), int(runner.cfg.output_len)

    # ---- loading ---------------------------------------------------------------------------------------------
    @classmethod
    def load(cls, run: os.PathLike, gpu: bool = False) -> "Forecaster":
        """The model of a run folder (its best-validation checkpoint) or of a checkpoint file in one, on the CPU or
        (`gpu`) on the first visible GPU."""
        from easytorch.device import set_device_type

        from .run import describe_run
        from .runner import PluginRunner

        run = Path(run)
        folder = run.parent if run.is_file() else run
        if not folder.is_dir():
            raise UserError(f"{run}: no such run folder or checkpoint.")
        record_path = folder / RECORD_FILE
        if not record_path.is_file():
            raise UserError(f"{folder} holds no {RECORD_FILE}: it is not a run folder of this plugin (or was trained "
                            "before forecasts were possible; train it again).")
        record = json.loads(record_path.read_text(encoding="utf-8"))
        options = RunOptions.from_record(record)
        quiet = logging.getLogger("stvfm-forecast")
        quiet.setLevel(logging.WARNING)
        spec = describe_run(options, quiet)
        check_same_dataset(record, spec.dataset.folder, "forecast")
        checkpoint = run if run.is_file() else _best_checkpoint(folder, spec.model_name, record)
        set_device_type("gpu" if gpu else "cpu")
        noisy = [logging.getLogger(name) for name in ("BasicTS", "easytorch-env")]  # building a runner logs each step
        for logger in noisy:
            logger.addFilter(_warnings_only)
        try:
            runner = PluginRunner(spec.in_folder(folder))
            runner.logger = quiet
            runner.fit_scaler()  # on the training split, as the run's test did
            runner._load_model(str(checkpoint))
        finally:
            for logger in noisy:
                logger.removeFilter(_warnings_only)
        runner.bare_model.eval()
        calibration_path = folder / CALIBRATION_FILE
        calibration = json.loads(calibration_path.read_text()) if calibration_path.is_file() else None
        return cls(runner, calibration, checkpoint)

    # ---- the prepared data --------------------------------------------------------------------------------------
    @property
    def sensor_ids(self) -> tuple:
        return self.dataset.sensor_ids

    def latest(self, rows: Optional[int] = None) -> tuple[np.ndarray, Optional[dt.datetime]]:
        """The prepared dataset's last `rows` readings (default `input_len`; data units) and the time of the last one
        (None when the dataset has no start time)."""
        parts = [np.load(self.dataset.folder / name, mmap_mode="r") for name in DATA_FILES]
        total = sum(len(p) for p in parts)
        readings = np.concatenate([np.asarray(p) for p in parts])[-(rows or self.input_len):]
        start = dt.datetime.fromisoformat(self.dataset.start) if self.dataset.start else None
        end = start + (total - 1) * self.step if start else None
        return readings, end

    def training_range(self) -> tuple[float, float]:
        """The smallest and largest reading of the training split (null values left out)."""
        train = np.asarray(np.load(self.dataset.folder / DATA_FILES[0], mmap_mode="r"), dtype=np.float64)
        null = self.dataset.null_val
        kept = train[np.isfinite(train) & (train != null if null is not None else True)]
        return (float(kept.min()), float(kept.max())) if kept.size else (0.0, 0.0)

    def check_readings(self, readings: np.ndarray, what: str) -> None:
        """Refuse an input the model cannot answer honestly: a window with too few readings, or readings far outside
        anything the run was trained on (the README's rule: refused, never forecast with a warning).

        The window may miss at most half its readings (or, for data that missed more in training, the prepared data's
        own share). The readings must lie within the training split's range widened by its width on each side, and
        never below 0 where the training split never was."""
        readings = np.asarray(readings, dtype=np.float64)
        window = readings[-self.input_len:]
        null = self.dataset.null_val
        missing = ~np.isfinite(window) | (window == null if null is not None else False)
        if null is None and missing.any():  # no marker: the run never saw a missing reading, nor can its input hold one
            t, n = np.argwhere(missing)[0]
            raise UserError(f"{what}: {int(missing.sum())} reading(s) of the last {self.input_len} rows are missing "
                            f"(first: sensor {self.sensor_ids[n]}, row {len(readings) - self.input_len + t + 1}), but "
                            "the run's data has no missing-value marker (every reading is data), so the model cannot "
                            "be given a gap. Give every reading of the window.")
        limit = max(0.5, self.dataset.missing_share)
        if missing.all() or missing.mean() > limit:
            raise UserError(f"{what}: {int(missing.sum())} of the {missing.size} readings of the last {self.input_len} "
                            f"rows (the run's window) are missing ({100 * missing.mean():.0f} %, more than "
                            f"{100 * limit:.0f} %): a forecast from so little would look as sure as any other. Give "
                            "more complete readings.")
        low, high = self.training_range()
        width = max(high - low, abs(high), 1e-12)
        floor = 0.0 if low >= 0 else low - width
        seen = readings[np.isfinite(readings) & (readings != null if null is not None else True)]
        bad = seen[(seen < floor) | (seen > high + width)]
        if bad.size:
            raise UserError(f"{what}: {bad.size} reading(s) far outside the training data's range {low:g} .. {high:g} "
                            f"(first {bad[0]:g}; accepted: {floor:g} .. {high + width:g}): the model has never seen "
                            "such values and its forecast would mean nothing. Check the units and the column order.")

    @property
    def step(self) -> dt.timedelta:
        return dt.timedelta(minutes=self.dataset.step_minutes)

    # ---- forecasting -------------------------------------------------------------------------------------------
    def predict(self, inputs: np.ndarray, inputs_timestamps: np.ndarray, targets_timestamps: np.ndarray) -> np.ndarray:
        """Forecasts `[B, T_out, N(, C)]` in data units of input windows `[B, T_in, N(, C)]` (data units, missing
        readings as the dataset's null value) with their calendar features `[B, T, 2]`: the run's test path."""
        import torch
        from basicts.utils import RunnerStatus

        from .basicts_compat.runner import BasicTS110Runner

        runner = self.runner
        inputs = torch.as_tensor(np.asarray(inputs, dtype=np.float32))
        targets = torch.zeros((inputs.shape[0], self.output_len, *inputs.shape[2:]), dtype=torch.float32)
        data = {"inputs": inputs, "targets": targets,
                "inputs_timestamps": torch.as_tensor(np.asarray(inputs_timestamps, dtype=np.float32)),
                "targets_timestamps": torch.as_tensor(np.asarray(targets_timestamps, dtype=np.float32))}
        runner.status = RunnerStatus.EVALUATING
        with torch.inference_mode():
            data = runner.taskflow.preprocess(runner, data)
            out = runner.taskflow.postprocess(runner, BasicTS110Runner._forward(runner, runner.model, data, 0))
        return out["prediction"].cpu().numpy()

    def forecast(self, readings: Optional[np.ndarray] = None, end: Optional[dt.datetime] = None,
                 level: float = 0.9):
        """The next `output_len` steps after `readings` (default: the prepared data's last readings), as a table.

        Args:
            readings: `[T, N]` in the training's sensor order and data units, at least `input_len` rows (the last
                `input_len` are used); missing readings as the dataset's null value (or NaN).
            end: Time of the last reading (default: the prepared data's last step; None without a start time).
            level: Coverage of the bounds: one of the levels calibrated after training.

        Returns:
            A pandas DataFrame with one row per time, sensor and step: `time`, `sensor`, `step`, `forecast`, `lower`,
            `upper` (times are None when the data has no clock).
        """
        import pandas as pd

        if readings is None:
            readings, latest_end = self.latest()
            end = end or latest_end
        readings = self._window(readings)
        if self.calibration is not None and f"{level:g}" not in self.calibration["levels"]:
            raise UserError(f"--coverage {level:g}: the run calibrated {', '.join(self.calibration['levels'])}; evaluate "
                            f"its checkpoint with python -m basicts.run ... --eval CKPT --coverage {level:g} to get those "
                            "bounds.")
        stamps = self._timestamps(end)
        prediction = self.predict(readings[None], stamps[None, :self.input_len], stamps[None, self.input_len:])[0]
        if prediction.ndim == 3 and prediction.shape[-1] == 1:
            prediction = prediction[..., 0]  # [T_out, N]: one channel
        if prediction.ndim != 2:
            raise UserError(f"the model forecasts {prediction.shape[-1]} channels per sensor; the forecast table holds one "
                            "value per sensor and step (datasets with channels are not supported by `forecast` yet).")
        # prediction: [T_out, N]
        null = self.dataset.null_val
        observed = np.isfinite(readings) & (readings != null if null is not None else True)
        lower, upper = bounds(prediction, self.calibration, level, readings, observed)
        floor = (self.calibration or {}).get("floor")
        if floor is not None:  # a forecast below what the data can take is shown at the floor, inside its bounds
            prediction = np.maximum(prediction, floor)
        times = [end + (k + 1) * self.step if end else None for k in range(self.output_len)]
        ids = self.sensor_ids
        table = {"time": np.repeat(times, len(ids)), "sensor": np.tile(ids, self.output_len)}
        if self.dataset.channel_names:  # one series per (node, channel), `<node>@<channel>`: its channel in a column
            table["channel"] = np.char.rpartition(np.asarray(table["sensor"], dtype=str), "@")[:, 2]
        return pd.DataFrame({
            **table, "step": np.repeat(np.arange(1, self.output_len + 1), len(ids)), "forecast": prediction.ravel(),
            "lower": lower.ravel(), "upper": upper.ravel()})

    def _window(self, readings: np.ndarray) -> np.ndarray:
        readings = np.asarray(readings, dtype=np.float64)
        if readings.ndim < 2 or readings.shape[1] != self.dataset.num_nodes:
            raise UserError(f"the readings have {readings.shape[1] if readings.ndim > 1 else 1} sensors; the run was "
                            f"trained on {self.dataset.num_nodes}.")
        if len(readings) < self.input_len:
            raise UserError(f"{len(readings)} rows of readings; the run's window is the last {self.input_len}: give at "
                            f"least {self.input_len} rows.")
        window = readings[-self.input_len:]
        null = self.dataset.null_val  # a missing reading as the run's test saw it: the null value (None: NaN, masked)
        return np.where(np.isfinite(window), window, null if null is not None else np.nan)

    def _timestamps(self, end: Optional[dt.datetime]) -> np.ndarray:
        """Calendar features `[T_in + T_out, 2]` of the input window ending at `end` and the steps after it."""
        steps = self.input_len + self.output_len
        start = end - (self.input_len - 1) * self.step if end else None
        if start is not None and self.dataset.start:
            first = dt.datetime.fromisoformat(self.dataset.start)
            if (start - first) % self.step:
                raise UserError(f"--end {end.isoformat(sep=' ')} is not on the data's grid of {self.dataset.step_minutes}-"
                                f"minute steps from {first.isoformat(sep=' ')}.")
        return make_timestamps(steps, self.dataset.step_minutes, start)


def _warnings_only(record: logging.LogRecord) -> bool:
    """A logging filter that keeps warnings and errors (easytorch resets its loggers' levels when it fetches them)."""
    return record.levelno >= logging.WARNING


def _best_checkpoint(folder: Path, model: str, record: dict) -> Path:
    """The checkpoint a run folder's forecasts use: its best-validation one (an eval folder: the one it evaluated)."""
    if record.get("eval_checkpoint"):
        return Path(record["eval_checkpoint"])
    found: Sequence[Path] = sorted(folder.glob(f"{model}_best_val_*.pt"))
    if not found:
        raise UserError(f"{folder} holds no best-validation checkpoint ({model}_best_val_MAE.pt): the run has not "
                        "finished an epoch. Train it first (python -m basicts.run ... --resume --run-dir, to continue "
                        "it).")
    return found[0]
