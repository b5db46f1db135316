"""`BasicTS110Runner`: BasicTS 1.1.0's runner with its bugs fixed, and the protocol's residual forecasting
(`--history week-residual`, where the config asks for it) in its forward pass, which every path shares.

`stvfm_plugin.runner.PluginRunner` builds on it (run folders' records, time cap, resuming, run summaries); each
override here is listed, with its test, in the package docstring.
"""
from __future__ import annotations

import logging
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, Dict, Optional

import numpy as np
import torch
from basicts.runners import BasicTSRunner
from basicts.runners.builder import Builder
from basicts.runners.taskflow import BasicTSForecastingTaskFlow
from basicts.utils import BasicTSMode, RunnerStatus
from basicts.utils.mask import null_val_mask
from easytorch.core.checkpoint import clear_ckpt
from easytorch.utils import get_logger, is_master, master_only
from torch.nn.parallel import DistributedDataParallel as DDP

from ..data.info import DatasetInfo
from ..protocols import MODEL_INPUT_LEN, RESIDUAL_LAG, RESIDUAL_LEVEL, RESIDUAL_WEEKS, residual_base
from .builder import BoundModel, install
from .metrics import honest

install()  # BasicTS's runner builds models through `PluginBuilder`

#: the loggers easytorch caches by name: BasicTS's, easytorch's own, and this plugin's (made with easytorch's get_logger)
CACHED_LOGGERS = ("BasicTS", "easytorch", "stvfm-plugin")


def follow_stderr() -> None:
    """Point the console handlers of the loggers easytorch caches at this call's stderr (they keep the stream of the
    first run in a process, which may be closed by now: a second run in one process then logs into nothing)."""
    for name, logger in list(logging.Logger.manager.loggerDict.items()):
        if isinstance(logger, logging.Logger) and name.startswith(CACHED_LOGGERS):
            for handler in logger.handlers:
                if type(handler) is logging.StreamHandler:
                    handler.stream = sys.stderr  # (setStream would flush the old, perhaps closed, stream)


class ForecastingTaskFlow(BasicTSForecastingTaskFlow):
    """BasicTS's forecasting task flow that also keeps which input readings were missing (`inputs_mask`, False where
    missing): its preprocessing turns them into ordinary numbers, and saved results must tell them apart."""

    def preprocess(self, runner, data: dict) -> dict:
        inputs_mask = null_val_mask(data["inputs"], runner.cfg.null_val)
        data = super().preprocess(runner, data)
        data["inputs_mask"] = inputs_mask
        return data


class BasicTS110Runner(BasicTSRunner):
    """`BasicTSRunner` with BasicTS 1.1.0's bugs fixed.

    Args:
        cfg: The run's BasicTS config.
        dataset: Its dataset (the model gets its structure).
        run_dir: The run folder (None: BasicTS's `<ckpt_save_dir>/<md5>`).
    """

    def __init__(self, cfg: Any, dataset: DatasetInfo, run_dir: Optional[Path] = None) -> None:
        self.run_dir = run_dir
        model_class = cfg.model
        cfg.model = BoundModel(model_class, dataset)
        try:  # BasicTS builds the model inside __init__, from `cfg.model` only
            super().__init__(cfg)
        finally:
            cfg.model = model_class
        if type(self.taskflow) is BasicTSForecastingTaskFlow:
            self.taskflow = ForecastingTaskFlow()
        self.metrics = {name: honest(metric) for name, metric in self.metrics.items()}  # NaN predictions are not 0 error
        self._results: Dict[str, list] = {}

    @property
    def bare_model(self) -> torch.nn.Module:
        return self.model.module if isinstance(self.model, DDP) else self.model

    def _get_ckpt_save_dir(self, cfg) -> str:
        """The explicit run folder: BasicTS's `<ckpt_save_dir>/<md5>` silently resumes an earlier run of a config."""
        return str(self.run_dir) if self.run_dir else super()._get_ckpt_save_dir(cfg)

    @master_only
    def _save_model(self, unit_count: int) -> None:
        """Save the epoch's checkpoint, then drop the backup of the previous one (BasicTS keeps up to 9 `.pt.bak`
        files, 24 MB each for ST-VFM). The backup lives until the new checkpoint is written."""
        super()._save_model(unit_count)
        clear_ckpt(self.ckpt_save_dir)

    def init_logger(self, logger: Optional[logging.Logger] = None, logger_name: Optional[str] = None,
                    log_file_name: Optional[str] = None, log_level: int = logging.INFO) -> None:
        """Log to this run's file: easytorch caches loggers by name with the file of the first run in a process."""
        super().init_logger(logger, logger_name, log_file_name, log_level)
        if logger is None and log_file_name is not None and is_master():
            path = os.path.abspath(os.path.join(
                self.ckpt_save_dir, f"{log_file_name}_{time.strftime('%Y%m%d%H%M%S')}.log"))
            self.logger = get_logger(logger_name)
            for handler in [h for h in self.logger.handlers if isinstance(h, logging.FileHandler)]:
                self.logger.removeHandler(handler)
                handler.close()
            handler = logging.FileHandler(path, "w")
            handler.setFormatter(logging.Formatter("%(asctime)s - %(name)s - %(levelname)s - %(message)s"))
            self.logger.addHandler(handler)

    def on_epoch_start(self, epoch: int) -> None:
        """Count epochs right when an epoch is one batch, and train the last batch of the last epoch."""
        if self.training_unit == "epoch":  # BasicTS counts `global_steps // steps_per_epoch + 1`: epoch 2 first when an
            epoch = self.epoch = (self.global_steps - 1) // self.steps_per_epoch + 1  # epoch is one batch
        super().on_epoch_start(epoch)
        if self.training_unit == "epoch":  # one past the last step: BasicTS stops when its counter reaches num_steps
            self.num_steps = self.num_epochs * self.steps_per_epoch + 1

    def _forward(self, model, data, step, epoch=None):
        """Evaluate with the bare model: BasicTS evaluates on rank 0 alone, through DDP, whose buffer broadcast then
        waits for ranks that are not there. Under `--history week-residual` (the config's `RESIDUAL_LAG`) the model
        is given and forecasts the residual of the copy of one week earlier (`protocols.residual_base`: less the level
        a model adds back itself, RevIN's window mean, N-HiTS's last reading; under `weeks-residual` the median of the
        last weeks' copies, and the model reads only the last `MODEL_INPUT_LEN` steps of its window; a missing reading
        is no copy, as in the naive references), its forecast is that copy plus its output; the loss, metrics and
        saved results see the forecast and the targets. A model whose forward takes `targets_base` (ST-VFM: its flow
        loss reads the data's own flow) is given what its output is added to."""
        if self.status != RunnerStatus.TRAINING:
            model = self.bare_model
        lag = self.cfg.get(RESIDUAL_LAG)
        if not lag:
            return super()._forward(model, data, step, epoch)
        targets = data["targets"]
        reads = self.cfg.get(MODEL_INPUT_LEN)
        copy = residual_base(data["inputs"], lag, targets, self.cfg.get(RESIDUAL_LEVEL),
                             self.cfg.get(RESIDUAL_WEEKS) or 1, reads, data.get("inputs_mask"))  # [B, T_out, N(, C)]
        if reads:  # `weeks-residual`: the window spans the weeks of the median; the model reads the last of them
            for key in ("inputs", "inputs_timestamps", "inputs_mask"):  # what the model and the saved results see
                if data.get(key) is not None:
                    data[key] = data[key][:, -reads:]  # [B, T_model, ...]
        data["targets"] = targets - copy  # what the model learns from (teacher forcing, its own likelihood)
        data["targets_base"] = copy
        forward_return = super()._forward(model, data, step, epoch)
        del data["targets_base"]
        forward_return.pop("targets_base", None)
        prediction = forward_return["prediction"]
        forward_return["prediction"] = prediction + copy.to(prediction.device)
        forward_return["targets"] = data["targets"] = targets.to(prediction.device)
        return forward_return

    def _eval_loop(self, mode) -> None:
        with torch.inference_mode():  # BasicTS evaluates under no_grad only
            super()._eval_loop(mode)

    def _eval_on_horizons(self, forward_return: dict) -> None:
        if self.status != RunnerStatus.VALIDATING:  # BasicTS adds validation batches to the per-horizon test meters
            super()._eval_on_horizons(forward_return)

    def _save_best_model(self, unit_count: int, metric_name: str, greater_best: bool = True) -> None:
        """Never keep a non-finite validation metric as the best."""
        if not math.isfinite(self.meter_pool.get_value(metric_name)):
            self.logger.warning(f"{metric_name} is not finite this epoch: not a best checkpoint.")
            return
        super()._save_best_model(unit_count, metric_name, greater_best)

    def _save_results(self, batch_idx: int, batch_data: Dict[str, torch.Tensor]) -> None:
        """Keep the batch's inputs, predictions and targets in one unit (data units when `rescale`, as the metrics),
        missing readings as NaN (BasicTS saves normalised inputs, and missing readings as 0 like real zeros)."""
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
        super().on_eval_start(ckpt_path)

    def validation_loader(self):
        """The validation split's loader (built when the run has not trained, e.g. `--eval`)."""
        if self.val_data_loader is None:
            self.val_data_loader = Builder._build_data_loader(self.cfg, BasicTSMode.VAL, self.logger)
        return self.val_data_loader

    def fit_scaler(self) -> None:
        """Fit the scaler on the training split, as BasicTS's evaluation does before it loads a checkpoint (for tools
        that score a checkpoint outside `eval`)."""
        if self.scaler is not None:
            self.scaler.fit(Builder._build_dataset(self.cfg, BasicTSMode.TRAIN).data)

    def write_results(self) -> Optional[Path]:
        """Write the kept test results as `np.load`-able `.npy` files (BasicTS writes raw memmaps at a wrong offset for
        the last partial batch); returns their folder (None: nothing kept)."""
        if not self._results:
            return None
        folder = Path(self.ckpt_save_dir) / "test_results"
        folder.mkdir(parents=True, exist_ok=True)
        for key, parts in self._results.items():
            np.save(folder / f"{key}.npy", np.concatenate(parts, axis=0))
        return folder
