"""`PluginRunner`: BasicTS 1.1.0's runner with the fixes this plugin carries.

- Runs go to an explicit run folder (`RunOptions.run_dir`) instead of `<ckpt_save_dir>/<md5>`, so a
  new run never silently resumes an old one; resuming happens only when `RunOptions.resume` is set.
- Models that take the dataset's structure get it: the graph (`adj`), coordinates (`coords`) and grid
  shape (`grid_shape`) are passed to `model(config, ...)` when its `__init__` has those parameters.
- Distributed training works on GPUs and on CPUs (gloo). BasicTS 1.1.0 passes `device_ids` even for a
  CPU module (DDP refuses it), and runs validation and test on rank 0 alone through the DDP wrapper,
  whose buffer broadcast then waits for ranks that are not there. Here a CPU model is wrapped without
  `device_ids`, evaluation uses the bare model, and only rank 0 writes files. (DDP does average the
  gradients: BasicTS's `no_sync()` around `backward()` comes after a forward pass that already armed the
  reducer; `tests/test_distributed.py` checks it.)
- The test split is used once, for the best-validation checkpoint after training. (BasicTS also
  tests every epoch, and its validation pass adds its batches to the per-horizon *test* meters.)
- `save_results` writes real `.npy` files (BasicTS writes raw memmaps with a wrong offset for the
  last partial batch).
- Best-validation checkpoints hold the model and its metrics, not the optimizer state (the
  last-epoch checkpoint keeps it for `--resume`).
- `--resume` is exact: the random states and callback counters (early stopping) after each saved
  epoch are kept in `resume_state.pt` and restored, so a resumed run repeats the uninterrupted one.
- `run_info.json` records what a leaderboard needs: parameters, seconds per epoch, inference
  milliseconds per test batch, peak memory, device, and the model's own build report (e.g. where a
  frozen backbone's weights came from). A resumed run keeps the epochs recorded before it stopped.
- Validation and test run under `torch.inference_mode()` (no autograd bookkeeping at all).
- Epochs are counted right when an epoch is a single batch (BasicTS starts at "Epoch 2 / 1" and then fails to
  back up a checkpoint that does not exist).
- The last epoch trains on every batch. BasicTS 1.1.0's loop stops once its step counter, already advanced
  past the step just taken, reaches `num_epochs * steps_per_epoch`, so the last batch of the last epoch is
  never trained on (an N-epoch run then differs from the first N epochs of a longer one).
- Each epoch ends with one `Progress:` log line (epoch, training seconds, validation metric), and the
  run's `status.json` (`stvfm_plugin.status`) follows it: state, epoch, validation metric, and at the
  end why training stopped (early stopping, max epochs, or the `--max-minutes` time cap; a run cut by
  the cap is marked as not converged).
"""
from __future__ import annotations

import functools
import inspect
import json
import logging
import math
import os
import random
import resource
import sys
import time
from typing import Dict, Optional

import numpy as np
import torch
from basicts.runners import BasicTSRunner
from basicts.runners.builder import Builder
from basicts.runners.taskflow import BasicTSForecastingTaskFlow
from basicts.utils import RunnerStatus
from basicts.utils.mask import null_val_mask
from easytorch.core.checkpoint import clear_ckpt, get_last_ckpt_path
from easytorch.device import to_device
from easytorch.utils import get_local_rank, get_logger, is_master, master_only
from torch.nn.parallel import DistributedDataParallel as DDP

from .data.info import DatasetInfo
from .datasets import config_folder
from .errors import UserError
from .metrics import honest, nonfinite_scored
from .run_options import RunOptions
from .status import STOP_REASONS, write_status

#: random states and callback counters after the last saved epoch (for an exact --resume)
RESUME_STATE = "resume_state.pt"


class Diverged(UserError):
    """Training stopped because its loss is not finite."""

    def __init__(self, message: str, epoch: int) -> None:
        super().__init__(message)
        self.epoch = epoch


class ForecastingTaskFlow(BasicTSForecastingTaskFlow):
    """BasicTS's forecasting task flow that also keeps which input readings were missing (`inputs_mask`, False where
    missing): its preprocessing turns them into ordinary numbers, and saved results must tell them apart."""

    def preprocess(self, runner, data: dict) -> dict:
        inputs_mask = null_val_mask(data["inputs"], runner.cfg.null_val)
        data = super().preprocess(runner, data)
        data["inputs_mask"] = inputs_mask
        return data


class PluginRunner(BasicTSRunner):
    """`BasicTSRunner` with explicit run folders, readable results and a run summary."""

    def __init__(self, cfg, options: RunOptions) -> None:
        self.options = options
        self.dataset = DatasetInfo.load(config_folder(cfg))
        self._results: Dict[str, list] = {}
        self.epoch_seconds: list[float] = []
        self.inference_seconds: list[float] = []
        self._last_val: Optional[float] = None
        self.stop_reason: Optional[str] = None
        original = Builder.__dict__["_build_model"]
        Builder._build_model = staticmethod(functools.partial(build_model, dataset=self.dataset))
        try:  # BasicTSRunner builds the model inside __init__ with `cfg.model(cfg.model_config)` only
            super().__init__(cfg)
        finally:
            Builder._build_model = original
        if type(self.taskflow) is BasicTSForecastingTaskFlow:
            self.taskflow = ForecastingTaskFlow()
        self.metrics = {name: honest(metric) for name, metric in self.metrics.items()}  # NaN predictions are not 0 error
        self.nonfinite_predictions = 0
    @property
    def bare_model(self) -> torch.nn.Module:
        return self.model.module if isinstance(self.model, DDP) else self.model

    # ---- run folder and resuming -------------------------------------------------------------
    def _get_ckpt_save_dir(self, cfg) -> str:
        return str(self.options.run_dir) if self.options.run_dir else super()._get_ckpt_save_dir(cfg)

    @master_only
    def _save_model(self, unit_count: int) -> None:
        """Save the epoch's checkpoint, then drop the backup of the previous one: resuming needs the last checkpoint
        only. (BasicTS renames each previous checkpoint to `.pt.bak` and clears them every 10 epochs, so a run that
        early stopping ends keeps up to 9 of them, 24 MB each for ST-VFM.) The backup lives until the new checkpoint
        is written, so an interrupted save still leaves one good checkpoint."""
        super()._save_model(unit_count)
        clear_ckpt(self.ckpt_save_dir)

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
        path = os.path.join(self.ckpt_save_dir, RESUME_STATE)
        torch.save(state, path + ".tmp")
        os.replace(path + ".tmp", path)  # never half-written

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
        if logger is None and log_file_name is not None and is_master():
            # easytorch caches loggers by name with the file of the first run: log to this run's file
            path = os.path.abspath(os.path.join(
                self.ckpt_save_dir, f"{log_file_name}_{time.strftime('%Y%m%d%H%M%S')}.log"))
            self.logger = get_logger(logger_name)
            for handler in [h for h in self.logger.handlers if isinstance(h, logging.FileHandler)]:
                self.logger.removeHandler(handler)
                handler.close()
            handler = logging.FileHandler(path, "w")
            handler.setFormatter(logging.Formatter("%(asctime)s - %(name)s - %(levelname)s - %(message)s"))
            self.logger.addHandler(handler)
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
        if is_master():  # say the run is under way before its first epoch ends (minutes, for the slow models):
            self._write_status("running")  # a resumed run: its epochs and best validation come from the checkpoint

    def on_epoch_start(self, epoch: int) -> None:
        if self.training_unit == "epoch":  # BasicTS counts `global_steps // steps_per_epoch + 1`: epoch 2 first when an
            epoch = self.epoch = (self.global_steps - 1) // self.steps_per_epoch + 1  # epoch is one batch
        super().on_epoch_start(epoch)
        if self.training_unit == "epoch":  # one past the last step: BasicTS stops when its counter reaches num_steps
            self.num_steps = self.num_epochs * self.steps_per_epoch + 1

    def on_epoch_end(self, epoch: int, step: int) -> None:
        self.epoch_seconds.append(time.time() - self.epoch_start_time)
        super().on_epoch_end(epoch, step)
        cap = self.options.max_minutes
        if cap is not None and sum(self.epoch_seconds) >= 60 * cap and epoch < self.num_epochs \
                and not self.should_training_stop:
            self.should_training_stop = True
            self.stop_reason = "time cap"
            self.logger.info(f"Time cap: {sum(self.epoch_seconds) / 60:.1f} min of training reached the cap of {cap:g} "
                             "min; stopping after this epoch (the run is marked as not converged).")
        if self.stop_reason is None and epoch >= self.num_epochs:
            self.stop_reason = "max epochs"
        elif self.stop_reason is None and self.should_training_stop:  # set by EarlyStopping
            self.stop_reason = "early stopping"
        if is_master():
            self.logger.info(self._progress_line(epoch))
            self._save_resume_state(epoch)
            self._write_status("running", epoch)
        self._write_run_info()

    def train(self) -> None:
        super().train()
        if not self.cfg.get("eval_after_train", True) and is_master():  # --no-test: the test split stays unseen
            self._write_run_info()
            self._write_status("finished")
            self.logger.info("Not tested (--no-test): the best validation "
                             f"{self.target_metric} is in run_info.json (best_metrics).")

    def _write_status(self, state: str, epoch: Optional[int] = None) -> None:
        best = self.best_metrics.get(f"val/{self.target_metric}")
        fields = dict(state=state, epoch=epoch if epoch is not None else len(self.epoch_seconds),
                      num_epochs=self.num_epochs, metric=self.target_metric, val=self._last_val,
                      best_val=float(best) if best is not None else None)
        if self.stop_reason is not None:
            fields.update(stop_reason=self.stop_reason, converged=STOP_REASONS[self.stop_reason])
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
        if self.status == RunnerStatus.TRAINING:
            return super()._forward(model, data, step, epoch)
        model = self.bare_model  # evaluation runs on rank 0 alone (BasicTS's validate is master-only): no DDP collectives
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

    def _eval_loop(self, mode) -> None:
        with torch.inference_mode():
            super()._eval_loop(mode)

    def _eval_on_horizons(self, forward_return: dict) -> None:
        if self.status != RunnerStatus.VALIDATING:  # horizon meters are test meters
            super()._eval_on_horizons(forward_return)

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
        if not math.isfinite(self.meter_pool.get_value(metric_name)):
            self.logger.warning(f"{metric_name} is not finite this epoch: not a best checkpoint.")
            return
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
        """Keep the batch's inputs, predictions and targets in one unit (data units when `rescale`, as the metrics),
        missing readings as NaN (BasicTS saves normalised inputs, and missing readings as 0 like real zeros)."""
        self.nonfinite_predictions += nonfinite_scored(batch_data["prediction"], batch_data["targets_mask"])
        scored = batch_data["targets"][batch_data["targets_mask"].bool()].flatten()
        self._target_sample.append(scored[::max(1, len(scored) // TARGET_SAMPLE)].cpu())  # for the MAPE note
        if not self.cfg.save_results:
            return
        inputs, targets = batch_data["inputs"], batch_data["targets"]
        if self.cfg.rescale and self.scaler is not None:
            inputs = self.scaler.inverse_transform(inputs)
        if "inputs_mask" in batch_data:
            inputs = inputs.masked_fill(~batch_data["inputs_mask"], float("nan"))
        targets = targets.masked_fill(~batch_data["targets_mask"].bool(), float("nan"))
        for key, value in (("inputs", inputs), ("prediction", batch_data["prediction"]), ("targets", targets)):
            self._results.setdefault(key, []).append(value.detach().cpu().numpy())

    def on_eval_start(self, ckpt_path: Optional[str]) -> None:
        self._results = {}
        self._target_sample: list = []
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
        if self.cfg.save_results and self._results:
            folder = os.path.join(self.ckpt_save_dir, "test_results")
            os.makedirs(folder, exist_ok=True)
            for key, parts in self._results.items():
                np.save(os.path.join(folder, f"{key}.npy"), np.concatenate(parts, axis=0))
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
            self._write_status("finished")
        for line in getattr(self.bare_model, "run_warnings", []):
            self.logger.warning(line)

    def _write_run_info(self) -> None:
        if not is_master():
            return
        model = self.bare_model
        info = {
            "model": self.model_name,
            "dataset": self.cfg.dataset_name,
            "input_len": self.cfg.get("input_len"),
            "output_len": self.cfg.get("output_len"),
            "num_epochs": self.cfg.num_epochs,
            "epochs_run": len(self.epoch_seconds),
            "seconds_per_epoch": self.epoch_seconds,
            "total_params": sum(p.numel() for p in model.parameters()),
            "trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
            "device": str(next(model.parameters()).device),
            "batch_size": self.cfg.get("batch_size"),
            "inference_ms_per_batch": (1000 * float(np.mean(self.inference_seconds[1:] or self.inference_seconds))
                                       if self.inference_seconds else None),
            "peak_memory_mb": _peak_memory_mb(next(model.parameters()).device),
            "cpu_threads": [torch.get_num_threads()],
            "seed": self.cfg.seed,
            "stop_reason": self.stop_reason,
            "converged": STOP_REASONS.get(self.stop_reason) if self.stop_reason else None,
            "max_minutes": self.options.max_minutes,
            "tested": bool(self.cfg.get("eval_after_train", True)),
            "best_metrics": {k: float(v) for k, v in getattr(self, "best_metrics", {}).items()},
            "build_report": list(getattr(model, "build_report", [])),
            "mape_note": getattr(self, "mape_note", None),
            "nonfinite_predictions": self.nonfinite_predictions,
            "warnings": list(getattr(model, "run_warnings", [])),
        }
        previous = self._previous_run_info()
        if previous:  # an evaluation keeps what training recorded; a resumed run keeps the earlier peak and threads
            earlier_peak = previous.get("peak_memory_mb") or {}
            if earlier_peak.get("kind") == info["peak_memory_mb"]["kind"]:
                info["peak_memory_mb"]["mb"] = max(info["peak_memory_mb"]["mb"], earlier_peak["mb"])
            info["cpu_threads"] = sorted(set(info["cpu_threads"]) | set(previous.get("cpu_threads", [])))
            if not self.epoch_seconds:
                for key in ("epochs_run", "seconds_per_epoch", "best_metrics", "stop_reason", "converged", "max_minutes"):
                    info[key] = previous.get(key, info[key])
            if not self.inference_seconds:
                for key in ("inference_ms_per_batch",):
                    info[key] = previous.get(key, info[key])
        with open(os.path.join(self.ckpt_save_dir, "run_info.json"), "w", encoding="utf-8") as f:
            json.dump(info, f, indent=2)

    def _previous_run_info(self) -> dict:
        path = os.path.join(self.ckpt_save_dir, "run_info.json")
        if not os.path.isfile(path):
            return {}
        with open(path, encoding="utf-8") as f:
            return json.load(f)


#: scored test targets kept per batch for the MAPE note (an evenly strided sample: enough for shares of 1 %)
TARGET_SAMPLE = 4096
#: a scored target this close to zero, relative to the median |target|, makes MAPE explode
NEAR_ZERO = 0.01


def mape_note(targets: torch.Tensor) -> Optional[str]:
    """Why MAPE means nothing on these scored targets, or None: more than 1 % of them negative (signed data), or near
    zero (below `NEAR_ZERO` x the median |target|), where the percentage error divides by almost nothing."""
    size = targets.abs()
    median = float(size.median()) if len(size) else 0.0
    near_zero = float((size <= NEAR_ZERO * median).double().mean()) if median > 0 else 1.0
    negative = float((targets < 0).double().mean()) if len(targets) else 0.0
    if negative > 0.01:
        why = (f"{100 * negative:.1f} % of the scored test targets are negative (signed data), and a percentage of a "
               "signed value says nothing")
    elif near_zero > 0.01:
        why = (f"{100 * near_zero:.1f} % of the scored test targets are zero or near it (within {NEAR_ZERO:g} x the "
               "median |target|), where the percentage error divides by almost nothing")
    else:
        return None
    return f"not meaningful on this data: {why}; compare MAE and RMSE"


#: what a model's `__init__` may take besides its config -> how to get it from the dataset
STRUCTURE = {"adj": DatasetInfo.graph, "coords": DatasetInfo.coords, "grid_shape": lambda d: d.grid_shape}


def structure_for(model: type, dataset: DatasetInfo) -> dict:
    """The structure arguments `model.__init__` accepts, from the dataset."""
    accepted = inspect.signature(model.__init__).parameters
    return {name: get(dataset) for name, get in STRUCTURE.items() if name in accepted}


def build_model(cfg, logger: logging.Logger, dataset: DatasetInfo) -> torch.nn.Module:
    """The model of `cfg`, given the dataset's structure, on the running device, compiled if asked, and wrapped in
    DDP when a process group is up (with `device_ids` only for a GPU module)."""
    logger.info("Building model.")
    model = to_device(cfg.model(cfg.model_config, **structure_for(cfg.model, dataset)))
    if cfg.compile_model:
        logger.info("Compile model with torch.compile")
        model = torch.compile(model)
    if torch.distributed.is_initialized():
        on_gpu = next(model.parameters()).is_cuda
        model = DDP(model, device_ids=[get_local_rank()] if on_gpu else None,
                    find_unused_parameters=cfg.ddp_find_unused_parameters)
    return model


def _peak_memory_mb(device: torch.device) -> dict:
    """Peak memory so far: CUDA's allocator peak on a GPU, else this process's peak resident set."""
    if device.type == "cuda":
        return {"kind": "cuda_max_allocated", "mb": torch.cuda.max_memory_allocated(device) / 2**20}
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return {"kind": "process_peak_rss", "mb": rss / (2**20 if sys.platform == "darwin" else 2**10)}
