"""`PluginRunner`: a run of this plugin inside BasicTS 1.1.0's runner (`basicts_compat.BasicTS110Runner`, which
fixes BasicTS's own bugs).

- It is built from a `RunSpec` (options, config, dataset, all read once) and trains in the spec's run folder;
  resuming happens only when the options ask for it.
- `--resume` is exact: the random states and callback counters (early stopping) after each saved epoch are kept in
  `resume_state.pt` and restored, so a resumed run repeats the uninterrupted one.
- Best-validation checkpoints hold the model and its metrics, not the optimizer state (the last-epoch checkpoint
  keeps it for `--resume`).
- A training loss that is not finite stops the run at once (`Diverged`); test predictions that are not finite are
  counted and the run is marked (`nonfinite_predictions`).
- The test split is used once, for the best-validation checkpoint after training (or never, with `--no-test`).
- `run_info.json` (`records.RunInfo`) records what a leaderboard needs: parameters, seconds per epoch, inference
  milliseconds per test batch, peak memory, device, the model's build report and where a frozen backbone's weights
  came from. A resumed run keeps the epochs recorded before it stopped.
- Each epoch ends with one `Progress:` log line (epoch, training seconds, validation metric), and the run's
  `status.json` (`stvfm_plugin.status`) follows it: state, epoch, validation metric, and at the end why training
  stopped (`records.StopReason`; a run cut by the `--max-minutes` cap is marked as not converged).
"""
from __future__ import annotations

import json
import logging
import math
import os
import random
import resource
import sys
import time
from pathlib import Path
from typing import Dict, Optional

import numpy as np
import torch
from easytorch.core.checkpoint import get_last_ckpt_path
from basicts.utils import RunnerStatus
from einops import rearrange
from easytorch.utils import is_master

from .basicts_compat.runner import BasicTS110Runner
from .basicts_compat.metrics import nonfinite_scored
from .errors import UserError
from .files import atomic_write, atomic_write_text, read_json
from .channel_metrics import per_channel
from .conformal import CALIBRATION_FILE, calibrate, coverage
from .cpu_threads import ThreadGovernor, threads_follow_free_cores
from .models.precision import autocast, needs_loss_scaling
from .mape import mape_note, sample_targets
from .records import RunInfo, RunState, StopReason
from .run_spec import RunSpec
from .status import write_status

#: random states and callback counters after the last saved epoch (for an exact --resume)
RESUME_STATE = "resume_state.pt"


class Diverged(UserError):
    """Training stopped because its loss is not finite."""

    def __init__(self, message: str, epoch: int) -> None:
        super().__init__(message)
        self.epoch = epoch


class PluginRunner(BasicTS110Runner):
    """`BasicTS110Runner` with explicit run folders, exact resuming, run records and a run summary."""

    def __init__(self, spec: RunSpec) -> None:
        self.options = spec.options
        self.dataset = spec.dataset
        self.epoch_seconds: list[float] = []
        self.inference_seconds: list[float] = []
        self._last_val: Optional[float] = None
        self.stop_reason: Optional[StopReason] = None
        self.nonfinite_predictions = 0
        self.governor: Optional[ThreadGovernor] = None
        self.threads_used = {torch.get_num_threads()}
        super().__init__(spec.cfg, spec.dataset, spec.options.run_dir)
        if needs_loss_scaling(self.bare_model):  # fp16: small gradients would vanish without loss scaling
            autocast("fp16", next(self.bare_model.parameters()).device)  # refuses anything but a GPU, before training
            self.use_amp, self.amp_scaler = True, torch.amp.GradScaler("cuda")

    # ---- resuming ------------------------------------------------------------------------------
    def _load_model_resume(self, strict: bool = True) -> None:
        if self.options.resume:
            super()._load_model_resume(strict)
            self.logger.info(f"Resumed from epoch {self.start_epoch} in {self.ckpt_save_dir}.")
            # the epochs trained before the interruption still count in run_info.json
            self.epoch_seconds = list(self._previous_run_info().get("seconds_per_epoch", []))[:self.start_epoch]
            self._restore_resume_state()

    # ---- exact resume: random states and callback counters of the last saved epoch -----------------
    def _save_resume_state(self, epoch: int) -> None:
        state = {
            "epoch": epoch,
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
            "numpy": np.random.get_state(),
            "python": random.getstate(),
            "callbacks": [dict(vars(c)) for c in self.callback_handler.callbacks],
        }
        atomic_write(os.path.join(self.ckpt_save_dir, RESUME_STATE), lambda tmp: torch.save(state, tmp))

    def _restore_resume_state(self) -> None:
        path = os.path.join(self.ckpt_save_dir, RESUME_STATE)
        state = torch.load(path, weights_only=False) if os.path.isfile(path) else None
        if state is None or state["epoch"] != self.start_epoch:
            self.logger.warning(f"No random state saved for epoch {self.start_epoch}: the resumed run goes on from the "
                                "checkpoint but will not repeat the uninterrupted run exactly.")
            return
        torch.set_rng_state(state["torch"])
        if state["cuda"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])
        np.random.set_state(state["numpy"])
        random.setstate(state["python"])
        for callback, saved in zip(self.callback_handler.callbacks, state["callbacks"]):
            vars(callback).update(saved)

    def _load_model(self, ckpt_path: Optional[str] = None, strict: bool = True) -> None:
        """Load a checkpoint's model weights; a missing, unreadable or foreign file is a `UserError`."""
        path = ckpt_path or get_last_ckpt_path(self.ckpt_save_dir)
        if not os.path.isfile(path):
            raise UserError(f"{path}: no such checkpoint file.")
        try:
            checkpoint = torch.load(path, map_location=next(self.bare_model.parameters()).device, weights_only=False)
        except Exception as e:  # truncated files, random bytes, other formats: torch and pickle raise many kinds
            raise UserError(f"{path} is not a readable checkpoint ({type(e).__name__}: {str(e).splitlines()[0][:200]}); "
                            "it may be truncated or not a torch file. Use a .pt file of a finished run folder.") from None
        state = checkpoint.get("model_state_dict") if isinstance(checkpoint, dict) else None
        if not isinstance(state, dict):
            raise UserError(f"{path} holds no model_state_dict: it is not a checkpoint of a BasicTS run.")
        try:
            self.bare_model.load_state_dict(state, strict=strict)
        except RuntimeError as e:
            detail = " ".join(str(e).split())[:300]
            raise UserError(f"{path} does not fit the {self.model_name} model of this config ({detail}). Was it written "
                            "by another model or with other settings? Evaluate it with the config it was trained with."
                            ) from None

    # ---- logging -----------------------------------------------------------------------------
    def init_logger(self, logger: Optional[logging.Logger] = None, logger_name: Optional[str] = None,
                    log_file_name: Optional[str] = None, log_level: int = logging.INFO) -> None:
        super().init_logger(logger, logger_name, log_file_name, log_level)
        device = next(self.bare_model.parameters()).device
        self.logger.info(f"Run folder: {self.ckpt_save_dir}")
        self.logger.info(f"Device: {device}{' (' + torch.cuda.get_device_name(device) + ')' if device.type == 'cuda' else ''}")
        for line in getattr(self.bare_model, "build_report", []):
            self.logger.info(line)
        for line in getattr(self.bare_model, "run_warnings", []):
            self.logger.warning(line)

    # ---- training: no test pass per epoch, record epoch times ----------------------------------
    def on_train_start(self) -> None:
        self._init_train()
        self.is_train_initialized = True
        self._init_validation()
        self.is_val_initialized = True
        self._count_parameters()
        if threads_follow_free_cores(self.options.threads) and next(self.bare_model.parameters()).device.type == "cpu":
            self.governor = ThreadGovernor(torch.get_num_threads(), sorted(os.sched_getaffinity(0))
                                           if hasattr(os, "sched_getaffinity") else range(os.cpu_count() or 1))
        if is_master():  # say the run is under way before its first epoch ends (minutes, for the slow models):
            self._write_status(RunState.RUNNING)  # a resumed run: its epochs and best validation come from the checkpoint

    def on_step_start(self, step: int) -> None:
        super().on_step_start(step)
        change = self.governor.poll() if self.governor is not None else None
        if change is not None:
            old, new, others = change
            self.threads_used.add(new)
            self.logger.info(f"CPU threads: {old} -> {new} (other processes keep {others:.1f} of the "
                             f"{self.governor.max_threads} cores busy)")

    def on_epoch_end(self, epoch: int, step: int) -> None:
        self.epoch_seconds.append(time.time() - self.epoch_start_time)
        super().on_epoch_end(epoch, step)
        cap = self.options.max_minutes
        if cap is not None and sum(self.epoch_seconds) >= 60 * cap and epoch < self.num_epochs \
                and not self.should_training_stop:
            self.should_training_stop = True
            self.stop_reason = StopReason.TIME_CAP
            self.logger.info(f"Time cap: {sum(self.epoch_seconds) / 60:.1f} min of training reached the cap of {cap:g} "
                             "min; stopping after this epoch (the run is marked as not converged).")
        if self.stop_reason is None and epoch >= self.num_epochs:
            self.stop_reason = StopReason.MAX_EPOCHS
        elif self.stop_reason is None and self.should_training_stop:  # set by EarlyStopping
            self.stop_reason = StopReason.EARLY_STOPPING
        if is_master():
            self.logger.info(self._progress_line(epoch))
            self._save_resume_state(epoch)
            self._write_status(RunState.RUNNING, epoch)
        self._write_run_info()

    def train(self) -> None:
        super().train()
        if not self.cfg.get("eval_after_train", True) and is_master():  # --no-test: the test split stays unseen
            self._write_run_info()
            self._write_status(RunState.FINISHED)
            self.logger.info("Not tested (--no-test): the best validation "
                             f"{self.target_metric} is in run_info.json (best_metrics).")

    def _write_status(self, state: RunState, epoch: Optional[int] = None) -> None:
        best = self.best_metrics.get(f"val/{self.target_metric}")
        fields = dict(state=state, epoch=epoch if epoch is not None else len(self.epoch_seconds),
                      num_epochs=self.num_epochs, metric=self.target_metric, val=self._last_val,
                      best_val=float(best) if best is not None else None)
        if self.stop_reason is not None:
            fields.update(stop_reason=self.stop_reason, converged=self.stop_reason.converged)
        write_status(self.ckpt_save_dir, **fields)

    def on_validate_end(self, train_step: int, train_epoch: Optional[int] = None) -> None:
        self._last_val = self.meter_pool.get_value(f"val/{self.target_metric}") if is_master() else None
        super().on_validate_end(train_step, train_epoch)

    def _progress_line(self, epoch: int) -> str:
        val = f", val {self.target_metric} {self._last_val:.4f}" if self._last_val is not None else ""
        best = self.best_metrics.get(f"val/{self.target_metric}")
        best = f" (best {best:.4f})" if best is not None else ""
        return f"Progress: epoch {epoch}/{self.num_epochs}, train {self.epoch_seconds[-1]:.1f} s{val}{best}"

    def _forward(self, model, data, step, epoch=None):
        """The forward pass, timed in the test (inference milliseconds per batch in run_info.json)."""
        if self.status not in (RunnerStatus.TESTING, RunnerStatus.EVALUATING):
            return super()._forward(model, data, step, epoch)
        device = next(self.bare_model.parameters()).device
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        forward_return = super()._forward(model, data, step, epoch)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        self.inference_seconds.append(time.perf_counter() - start)
        return forward_return

    def update_meter(self, name: str, value: float, n: int = 1) -> None:
        """Record a value; a training loss that is not finite stops the run at once (`Diverged`): every later step
        would train on NaN, and its checkpoints would be scored as if nothing were wrong."""
        if name == "train/loss" and not math.isfinite(value):
            lr = self.optimizer.param_groups[0]["lr"] if self.optimizer is not None else None
            raise Diverged(f"training diverged in epoch {self.epoch}: the training loss is {value}. The likely cause is "
                           f"a learning rate too high for this model and data (lr={lr:g}; try --set lr=...) or readings "
                           "too large for float32 (rescale the data).", self.epoch)
        super().update_meter(name, value, n)

    def _save_best_model(self, unit_count: int, metric_name: str, greater_best: bool = True) -> None:
        """A new best checkpoint holds the model and its metrics, not the optimizer state."""
        previous = self.best_metrics.get(metric_name)
        super()._save_best_model(unit_count, metric_name, greater_best)
        if self.best_metrics.get(metric_name) != previous and is_master():  # a new best was written
            path = os.path.join(self.ckpt_save_dir, f"{self.model_name}_best_{metric_name.replace('/', '_')}.pt")
            ckpt = torch.load(path, map_location="cpu", weights_only=False)
            for key in ("optim_state_dict", "amp_scaler_state_dict", "scheduler_state_dict"):
                ckpt.pop(key, None)
            torch.save(ckpt, path)

    # ---- evaluation outputs ------------------------------------------------------------------
    def _save_results(self, batch_idx: int, batch_data: Dict[str, torch.Tensor]) -> None:
        """Count the scored predictions that are not finite, sample the scored targets (for the MAPE note), and keep
        the batch when results are saved."""
        self.nonfinite_predictions += nonfinite_scored(batch_data["prediction"], batch_data["targets_mask"])
        scored = batch_data["targets"][batch_data["targets_mask"].bool()].flatten()
        self._target_sample.append(sample_targets(scored.cpu(), batch_idx))
        self._test_windows.append(self._interval_arrays(batch_data))  # for the intervals' test coverage
        super()._save_results(batch_idx, batch_data)

    def on_eval_start(self, ckpt_path: Optional[str]) -> None:
        self._target_sample: list = []
        self._test_windows: list = []
        self.interval_metrics: dict = {}
        self.channel_metrics: dict = {}
        self.nonfinite_predictions = 0
        self.inference_seconds = []
        best = os.path.join(self.ckpt_save_dir, f"{self.model_name}_best_val_{self.target_metric}.pt")
        if ckpt_path in (None, best) and self.epoch_seconds and not os.path.isfile(best):  # after training
            self.logger.warning(f"No epoch had a finite validation {self.target_metric} (the predictions were NaN or "
                                "inf), so there is no best checkpoint: the last epoch's model is tested.")
            ckpt_path = get_last_ckpt_path(self.ckpt_save_dir)
        super().on_eval_start(ckpt_path)

    def on_eval_end(self) -> None:
        if not is_master():
            return
        self._calibrate_intervals()
        folder = self.write_results()
        if folder is not None:
            self.logger.info(f"Test inputs, predictions and targets saved to {folder} (np.load-able, [samples, steps, "
                             f"nodes], {'in data units' if self.cfg.rescale else 'normalised'}; missing readings are NaN).")
        self.mape_note = mape_note(torch.cat(self._target_sample)) if self._target_sample and "MAPE" in self.metrics \
            else None
        if self.mape_note:
            self.logger.warning(f"MAPE: {self.mape_note}")
        if self.nonfinite_predictions:
            self.logger.warning(f"{self.nonfinite_predictions} scored test predictions are not finite (NaN or inf): "
                                "the metrics are NaN, and the run is marked in run_info.json (nonfinite_predictions).")
        self._save_metrics()
        self._write_run_info()
        if self.epoch_seconds:  # after training (an --eval run has its own folder and no epochs)
            self._write_status(RunState.FINISHED)
        for line in getattr(self.bare_model, "run_warnings", []):
            self.logger.warning(line)
        if self.nonfinite_predictions and self.options.eval_checkpoint:  # an evaluation has no other outcome to show
            raise UserError(f"{Path(self.options.eval_checkpoint).name}: its test predictions are not finite (NaN or "
                            f"inf) at {self.nonfinite_predictions:,} scored readings, so its metrics are NaN, not a result "
                            "(the eval folder keeps them, marked in run_info.json). Its weights may have diverged; "
                            "evaluate the best checkpoint of a run that finished.")

    # ---- prediction intervals (split conformal, `stvfm_plugin.conformal`) --------------------------------
    def _calibrate_intervals(self) -> None:
        """Calibrate the intervals (`calibration.json`, by `--interval-method`) on the validation split and measure
        them on the test split."""
        with torch.inference_mode():  # the tested checkpoint's forecasts of the validation windows
            validation = [self._interval_arrays(self.taskflow.postprocess(self, BasicTS110Runner._forward(
                self, self.model, self.taskflow.preprocess(self, data), step=0))) for data in self.validation_loader()]
        if not validation or not self._test_windows:
            return
        validation = [np.concatenate(a) for a in zip(*validation)]
        if self.nonfinite_predictions or not np.isfinite(validation[0][validation[2]]).all():
            self.logger.warning("No prediction intervals: some forecasts are not finite (NaN or inf).")
            return
        method, floor = self.options.interval_method, self.dataset.floor
        calibration = calibrate(*validation[:3], self.options.coverage, method=method, inputs=validation[3],
                                input_mask=validation[4], floor=floor)
        test = [np.concatenate(a) for a in zip(*self._test_windows)]
        self.interval_metrics = coverage(*test[:3], calibration, [h for h in (self.cfg.get("eval_horizons") or [])],
                                         inputs=test[3], input_mask=test[4], history=validation[:3])
        if method == "recent":  # a forecast after the data follows the latest windows: the test split's last ones
            latest = [np.concatenate(pair)[-len(validation[0]):] for pair in zip(validation, test)]
            calibration = calibrate(*latest[:3], self.options.coverage, method=method, floor=floor)
        atomic_write_text(os.path.join(self.ckpt_save_dir, CALIBRATION_FILE), json.dumps(calibration, indent=1))
        for level, groups in self.interval_metrics.items():
            self.logger.info(f"{float(level):.0%} interval ({method}, calibrated on validation): test coverage "
                             f"{groups['overall']['coverage']:.3f}, mean width {groups['overall']['width']:.3f}")

    def _interval_arrays(self, batch: dict) -> tuple:
        """A batch's forecasts, readings and scored mask `[B, T, N]` with its input windows in data units and their
        observed mask `[B, T_in, N]` (what the interval methods need)."""
        inputs = batch["inputs"]
        if self.cfg.rescale and self.scaler is not None:
            inputs = self.scaler.inverse_transform(inputs)
        observed = batch.get("inputs_mask", torch.ones_like(inputs, dtype=torch.bool))
        inputs, observed = [rearrange(a, "b t n c -> b t (n c)") if a.dim() == 4 else a for a in (inputs, observed)]
        return (*_scored_arrays(batch), inputs.detach().cpu().double().numpy(), observed.detach().cpu().bool().numpy())

    def _save_metrics(self) -> None:
        """BasicTS's test metrics, and each calibrated interval's coverage and width (`coverage_0.9`, `width_0.9`,
        overall and per horizon)."""
        super()._save_metrics()
        windows = [np.concatenate(a) for a in list(zip(*self._test_windows))[:3]] if self._test_windows else None
        self.channel_metrics = per_channel(*windows, self.dataset.channel_names) if windows else {}
        if not self.interval_metrics and not self.channel_metrics:
            return
        path = os.path.join(self.ckpt_save_dir, "test_metrics.json")
        metrics = read_json(path)
        metrics.update(self.channel_metrics)
        for level, groups in self.interval_metrics.items():
            metrics[f"coverage_{level}"] = {name: values["coverage"] for name, values in groups.items()}
            metrics[f"width_{level}"] = {name: values["width"] for name, values in groups.items()}
        atomic_write_text(path, json.dumps(metrics, indent=4))

    def _write_run_info(self) -> None:
        if not is_master():
            return
        model = self.bare_model
        device = next(model.parameters()).device
        source = getattr(model, "backbone_source", None)
        info = RunInfo(
            model=self.model_name, dataset=self.cfg.dataset_name, input_len=self.cfg.get("input_len"),
            output_len=self.cfg.get("output_len"), num_epochs=self.cfg.num_epochs, epochs_run=len(self.epoch_seconds),
            seconds_per_epoch=list(self.epoch_seconds), total_params=sum(p.numel() for p in model.parameters()),
            trainable_params=sum(p.numel() for p in model.parameters() if p.requires_grad), device=str(device),
            batch_size=self.cfg.get("batch_size"),
            inference_ms_per_batch=(1000 * float(np.mean(self.inference_seconds[1:] or self.inference_seconds))
                                    if self.inference_seconds else None),
            peak_memory_mb=_peak_memory_mb(device), cpu_threads=sorted(self.threads_used), seed=self.cfg.seed,
            stop_reason=self.stop_reason, converged=self.stop_reason.converged if self.stop_reason else None,
            max_minutes=self.options.max_minutes, tested=bool(self.cfg.get("eval_after_train", True)),
            best_metrics={k: float(v) for k, v in getattr(self, "best_metrics", {}).items()},
            build_report=list(getattr(model, "build_report", [])),
            backbone_report=list(getattr(model, "backbone_report", [])), mape_note=getattr(self, "mape_note", None),
            nonfinite_predictions=self.nonfinite_predictions, warnings=list(getattr(model, "run_warnings", [])),
            backbone=source.to_json() if source is not None else None, train_fraction=self.options.train_fraction,
            train_windows=self._train_windows(),
        ).merged_with(self._previous_run_info())
        atomic_write_text(os.path.join(self.ckpt_save_dir, "run_info.json"), json.dumps(info.to_json(), indent=2))

    def _train_windows(self) -> Optional[int]:
        """The distinct training windows (a `--train-fraction` epoch draws its kept ones over and over)."""
        dataset = getattr(getattr(self, "train_data_loader", None), "dataset", None)
        return None if dataset is None else getattr(dataset, "windows", len(dataset))

    def _previous_run_info(self) -> dict:
        return read_json(os.path.join(self.ckpt_save_dir, "run_info.json"))


def _scored_arrays(batch: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A batch's forecasts, readings and scored mask as `[B, T, N]` arrays (channels, if any, as more nodes)."""
    found = [batch[key].detach().cpu() for key in ("prediction", "targets", "targets_mask")]
    found = [rearrange(a, "b t n c -> b t (n c)") if a.dim() == 4 else a for a in found]  # [B, T, N]
    return found[0].double().numpy(), found[1].double().numpy(), found[2].bool().numpy()


def _peak_memory_mb(device: torch.device) -> dict:
    """Peak memory so far: CUDA's allocator peak on a GPU, else this process's peak resident set."""
    if device.type == "cuda":
        return {"kind": "cuda_max_allocated", "mb": torch.cuda.max_memory_allocated(device) / 2**20}
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return {"kind": "process_peak_rss", "mb": rss / (2**20 if sys.platform == "darwin" else 2**10)}
