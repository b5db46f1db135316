"""Training and evaluation launchers: BasicTS 1.1.0's, with `PluginRunner` and explicit run folders."""
from __future__ import annotations

import json
import os
import shutil
import time
import traceback
from pathlib import Path
from easytorch.device import set_device_type
from easytorch.launcher.dist_wrap import dist_wrap

from .errors import UserError
from .records import RunState
from .files import atomic_write_text
from .run_options import RECORD_FILE
from .run_spec import RunSpec
from .runner import Diverged, PluginRunner
from .trained_on import dataset_fingerprint
from .status import LOCK_FILE, STATUS_FILE, folder_lock, read_status, write_status


def new_run_dir(cfg) -> Path:
    """A fresh folder `<ckpt_save_dir>/<md5>/<YYYYmmdd-HHMMSS>` for one run of this config."""
    base = Path(cfg.ckpt_save_dir) / cfg.md5
    stamp = time.strftime("%Y%m%d-%H%M%S")
    run_dir, k = base / stamp, 1
    while run_dir.exists():
        run_dir, k = base / f"{stamp}-{k}", k + 1
    return run_dir


def latest_run_dir(cfg) -> Path:
    """The newest run folder of this config that holds a checkpoint (for `--resume`)."""
    base = Path(cfg.ckpt_save_dir) / cfg.md5
    runs = sorted((d for d in base.glob("*") if d.is_dir() and any(d.glob("*.pt"))), key=lambda d: d.name)
    if not runs:
        raise UserError(f"--resume: no earlier run of this config with a checkpoint under {base}. "
                        "Resuming needs the same config (same settings and --set values); drop --resume to start "
                        "a fresh run.")
    return runs[-1]


def _train(spec: RunSpec) -> None:
    runner = PluginRunner(spec)
    runner.init_logger(logger_name="BasicTS-training", log_file_name="training_log")
    try:
        runner.train()
    except UserError as e:  # said in one line (a divergence, a bad setting found while training)
        runner.logger.error(str(e))
        raise
    except BaseException:
        runner.logger.error(traceback.format_exc())
        raise


def record_end(run_dir: os.PathLike, error: BaseException) -> None:
    """Put how a run ended into its status file (`diverged` with its epoch, `interrupted`, or `failed` with the
    error); a finished run's status is never changed."""
    try:
        status = read_status(run_dir)
    except UserError:  # a damaged status file: replaced by this one
        status = {}
    if status.get("state") == RunState.FINISHED:
        return
    if isinstance(error, Diverged):
        write_status(run_dir, **{**status, "state": RunState.DIVERGED, "epoch": error.epoch, "error": str(error)})
    elif isinstance(error, KeyboardInterrupt):
        write_status(run_dir, **{**status, "state": RunState.INTERRUPTED})
    else:
        message = str(error) if isinstance(error, UserError) else f"{type(error).__name__}: {error}"
        write_status(run_dir, **{**status, "state": RunState.FAILED, "error": " ".join(message.split())[:500]})


def run_folder_lock(run_dir: Path):
    """Hold `run_dir` for this process: a second run (or `--resume`) pointed at a folder whose run is still alive
    stops with one line instead of colliding on its checkpoints."""
    return folder_lock(Path(run_dir) / LOCK_FILE, lambda owner, since: (
        f"{run_dir} is in use by another run (process {owner}); wait for it to end or stop it, or use another "
        "--run-dir."))


def launch_training(spec: RunSpec) -> Path:
    """Train (and evaluate the best-validation checkpoint) in the spec's run folder; returns that folder."""
    cfg, run_dir = spec.cfg, Path(spec.options.run_dir)
    new = not run_dir.exists()

    def began() -> bool:  # training writes its first status when it starts (after the model and data are built)
        return (run_dir / STATUS_FILE).is_file()

    os.makedirs(run_dir, exist_ok=True)
    try:
        with run_folder_lock(run_dir):
            with open(run_dir / "cfg.json", "w", encoding="utf-8") as f:
                f.write(str(cfg))
            atomic_write_text(run_dir / RECORD_FILE, json.dumps(
                spec.options.to_record(dataset_fingerprint(spec.dataset.folder)), indent=2))
            if cfg.gpus:
                set_device_type("gpu")
                device_num = cfg.gpu_num
            else:
                set_device_type("cpu")
                device_num = 0
            try:
                dist_wrap(_train, node_num=cfg.get("dist_node_num", 1), device_num=device_num,
                          dist_backend=cfg.get("dist_backend"), init_method=cfg.get("dist_init_method"))(spec)
            except BaseException as e:  # the folder says how its run ended, in training or in the test
                if began() or not new:
                    record_end(run_dir, e)
                raise
    except BaseException:
        if new and not began():  # failed while building the model or data: no half-made folder stays
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
    return run_dir


def launch_evaluation(spec: RunSpec) -> Path:
    """Evaluate the spec's `eval_checkpoint` on the test split; metrics go to `<run_dir>/test_metrics.json`."""
    cfg, ckpt_path, run_dir = spec.cfg, Path(spec.options.eval_checkpoint), spec.options.run_dir
    if not ckpt_path.is_file():
        raise UserError(f"--eval {ckpt_path}: no such checkpoint file. Checkpoints are the .pt files in a run "
                        "folder, e.g. checkpoints/STID/.../<run>/STID_best_val_MAE.pt.")
    set_device_type("gpu" if cfg.gpus else "cpu")
    os.makedirs(run_dir, exist_ok=True)
    try:
        atomic_write_text(Path(run_dir) / RECORD_FILE, json.dumps(
            spec.options.to_record(dataset_fingerprint(spec.dataset.folder)), indent=2))
        runner = PluginRunner(spec)
        runner.init_logger(logger_name="BasicTS-evaluation", log_file_name="evaluation_log")
        runner.eval(str(ckpt_path))
    except BaseException:
        if not (Path(run_dir) / "test_metrics.json").is_file():  # nothing to keep: no half-made eval folder
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
    return Path(run_dir)


def evaluation_dir(ckpt_path: Path) -> Path:
    """`<checkpoint folder>/eval-<YYYYmmdd-HHMMSS>` for a `--eval` run."""
    return Path(ckpt_path).parent / f"eval-{time.strftime('%Y%m%d-%H%M%S')}"

