"""Command line: `python -m basicts.run -c CONFIG.py` (also `python -m stvfm_plugin.run`, `stvfm-run`).

Trains a BasicTS 1.1.0 config (a Python file defining `CFG = BasicTSForecastingConfig(...)`) and
evaluates its best-validation checkpoint on the test split, or evaluates a given checkpoint.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import os
from pathlib import Path
from typing import Optional, Sequence

from .conformal import METHODS
from .cpu_threads import omp_threads
from .protocols import HISTORIES
from .errors import UserError, exit_status
from .records import RunState
from .files import read_json
from .run_options import RECORD_FILE, RunOptions
from .run_spec import RunSpec
from .status import is_run_folder, run_owner
from .trained_on import check_same_dataset, settings_differences

EPILOG = """examples:
  python -m basicts.run -c baselines_cfg/STVFM_Demo.py -g cpu
  python -m basicts.run -c baselines_cfg/STID.py --dataset MyData --set num_epochs=2 --set model_config.num_layers=2
  python -m basicts.run -c baselines_cfg/STID_PEMS08.py --eval checkpoints/STID/.../STID_best_val_MAE.pt

Each training run writes a fresh folder <ckpt_save_dir>/<config md5>/<date-time>/ holding cfg.json, the
training log, checkpoints, test_metrics.json and run_info.json. --resume continues the newest run of the
same config instead."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m basicts.run", description="Train and evaluate a BasicTS 1.1 config (ST-VFM plugin).",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-c", "--cfg", required=True, metavar="CONFIG.py", help="config file defining CFG")
    parser.add_argument("--dataset", metavar="NAME",
                        help="prepared dataset to run on (its folder under the working directory's datasets root); its facts (nodes, step, calendar, null value, "
                             "graph) fill the config. Needed by the generic configs, e.g. baselines_cfg/STID.py")
    parser.add_argument("-g", "--gpus", default=None, metavar="IDS",
                        help="'cpu' or empty: CPU (default); '0' or '0,1': those GPUs (several: DDP)")
    parser.add_argument("--eval", metavar="CKPT", help="evaluate this checkpoint on the test split instead of training")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config entry (repeatable), e.g. num_epochs=2, model_config.vfm_layers=6")
    parser.add_argument("--ckpt-dir", metavar="DIR", help="root folder of run folders (default: the config's ckpt_save_dir)")
    parser.add_argument("--seed", type=int, help="random seed (default: the config's)")
    parser.add_argument("--run-dir", metavar="DIR", help="use exactly this run folder (with --resume: continue it)")
    parser.add_argument("--patience", type=int, metavar="N",
                        help="early stopping: stop after N epochs without a better validation metric "
                             "(replaces the config's EarlyStopping)")
    parser.add_argument("--max-minutes", type=float, metavar="M",
                        help="cap on training time: stop after the epoch that reaches M minutes, test the best "
                             "checkpoint, and mark the run as not converged (status.json, run_info.json)")
    parser.add_argument("--resume", action="store_true", help="continue the newest unfinished run of this config")
    parser.add_argument("--threads", type=int, metavar="N",
                        help="torch CPU threads (default: $OMP_NUM_THREADS if set, else every core this process may "
                             "use); recorded in run_info.json")
    parser.add_argument("--save-results", action="store_true",
                        help="also write test inputs/predictions/targets as .npy files in the run folder")
    parser.add_argument("--coverage", type=float, nargs="+", default=[0.9], metavar="LEVEL",
                        help="coverage levels of the prediction intervals calibrated on the validation split "
                             "(default 0.9); `python -m stvfm_plugin.forecast` uses them")
    parser.add_argument("--interval-method", choices=METHODS, default="scaled",
                        help="how the intervals are calibrated: split (validation errors per step and sensor), scaled "
                             "(errors relative to each input window's spread; the default) or recent (the latest "
                             "windows' errors)")
    parser.add_argument("--history", choices=HISTORIES, default="recent",
                        help="how much history the model reads: recent (the config's input_len, default), week (one "
                             "week of steps, e.g. 168 hourly: every model then sees the same hour last week) or "
                             "week-residual (a week in, and the model forecasts the residual of the copy of one week "
                             "earlier: its output is added to that copy) or weeks-residual (the same, added to the "
                             "median of the copies one, two and three weeks earlier: windows of three weeks, of which "
                             "the model reads the last)")
    parser.add_argument("--train-fraction", type=float, metavar="F",
                        help="train on the most recent share F of the training split (0 < F <= 1, e.g. 0.1: the few-"
                             "shot setting); the scaler is fitted on it, validation and test are unchanged")
    parser.add_argument("--no-test", action="store_true",
                        help="validation only: train, keep the best-validation checkpoint, and never evaluate the test "
                             "split (for tuning; run_info.json holds the best validation MAE)")
    return parser


def select_gpus(spec: Optional[str]) -> Optional[str]:
    if spec is None or spec.strip().lower() in ("", "cpu", "none"):
        return None
    ids = [s.strip() for s in spec.split(",") if s.strip()]
    if not all(i.isdigit() for i in ids):
        raise UserError(f"-g/--gpus {spec!r}: give 'cpu' or GPU indices such as 0 or 0,1.")
    import torch

    os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(ids)  # before CUDA is initialised
    if not torch.cuda.is_available():
        raise UserError(f"-g/--gpus {spec} asks for GPUs, but this machine has no usable CUDA device "
                        f"(torch {torch.__version__}, CUDA available: False). Use -g cpu to run on the CPU.")
    if torch.cuda.device_count() < len(ids):
        raise UserError(f"-g/--gpus {spec} asks for {len(ids)} GPUs, but only {torch.cuda.device_count()} "
                        "are visible.")
    return ",".join(str(i) for i in range(len(ids)))  # renumbered within CUDA_VISIBLE_DEVICES


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity, where the platform has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def flush_denormals() -> str:
    """Flush subnormal floats to zero in CPU ops: once tiny activations or gradients appear, x86 CPUs compute on
    them up to ~100x slower (measured: a StemGNN epoch on SZ-taxi went from 37 s to 430 s within ten epochs, and
    back to ~40 s with this; values below 1.2e-38 become 0, far below float32's resolution of any metric).

    Returns:
        A log line.
    """
    import torch

    if torch.set_flush_denormal(True):
        return "CPU: subnormal floats are flushed to zero (keeps CPU training at full speed)"
    return "CPU: this CPU cannot flush subnormal floats to zero; training may slow down if tiny values appear"


def set_threads(requested: Optional[int]) -> str:
    """Set torch's CPU threads: `requested`, else `$OMP_NUM_THREADS`, else every available core (fewer while other
    processes keep cores busy, see `threads_follow_free_cores`).

    Returns:
        A log line saying how many threads and why.
    """
    import torch

    if requested is not None:
        if requested < 1:
            raise UserError(f"--threads {requested}: give 1 or more.")
        threads, why = requested, "--threads"
    elif omp_threads():
        threads, why = omp_threads(), "OMP_NUM_THREADS"
    else:
        threads, why = available_cores(), ("every available core, fewer while other processes keep cores busy; "
                                           "--threads N to fix it")
    torch.set_num_threads(threads)
    cores = available_cores()
    if threads > cores:
        return (f"CPU threads: {threads} ({why}). WARNING: more threads than the {cores} core(s) this process may use: "
                f"threads that wait for a core slow every step down many times (measured: 10x on 2 cores); give "
                f"--threads {cores} or fewer")
    return f"CPU threads: {threads} ({why})"


def set_early_stopping(cfg, patience: int) -> None:
    """Replace the config's early stopping by one with `patience` epochs (0: no early stopping)."""
    from basicts.runners.callback import EarlyStopping

    if patience < 0:
        raise UserError(f"--patience {patience}: give 0 (no early stopping) or a positive number of epochs.")
    callbacks = [c for c in (cfg.get("callbacks") or []) if not isinstance(c, EarlyStopping)]
    cfg.callbacks = callbacks + ([EarlyStopping(patience=patience)] if patience else [])


def options_from(args: argparse.Namespace) -> RunOptions:
    """The parsed command line as `RunOptions`."""
    from .config_tools import parse_override

    if args.max_minutes is not None and not (math.isfinite(args.max_minutes) and args.max_minutes > 0):
        raise UserError(f"--max-minutes {args.max_minutes:g}: give a number of minutes above 0.")
    if args.seed is not None and not 0 <= args.seed < 2 ** 32:
        raise UserError(f"--seed {args.seed}: give a whole number from 0 to {2 ** 32 - 1}.")
    for option, value in (("--run-dir", args.run_dir), ("--ckpt-dir", args.ckpt_dir)):
        if value and Path(value).exists() and not Path(value).is_dir():
            raise UserError(f"{option} {value} is a file; give a folder.")
    bad = [level for level in args.coverage if not 0 < level < 1]
    if bad:
        raise UserError(f"--coverage {bad[0]:g}: give levels between 0 and 1, such as 0.9.")
    if args.no_test and (args.eval or args.save_results):
        raise UserError(f"--no-test never evaluates the test split, so {'--eval' if args.eval else '--save-results'} "
                        "(test predictions) cannot go with it.")
    return RunOptions(
        config=Path(args.cfg), dataset=args.dataset, overrides=[parse_override(item) for item in args.set], seed=args.seed, ckpt_dir=args.ckpt_dir,
        run_dir=Path(args.run_dir) if args.run_dir else None, resume=args.resume, patience=args.patience,
        max_minutes=args.max_minutes,
        eval_checkpoint=Path(args.eval) if args.eval else None, gpus=select_gpus(args.gpus), threads=args.threads,
        save_results=args.save_results, test=not args.no_test, coverage=tuple(dict.fromkeys(args.coverage)),
        interval_method=args.interval_method, history=args.history, train_fraction=args.train_fraction)


def describe_run(options: RunOptions, logger: logging.Logger) -> RunSpec:
    """The run the options ask for: its config loaded and overridden, its dataset found (or generated) and read
    once, the dataset's facts filled into the config, and the windows and horizons checked."""
    from .config_tools import apply_overrides, default_ckpt_dir, load_config, refresh, set_top_level
    from .data.binding import bind_dataset, check_values, check_windows, ensure_dataset
    from .data.train_share import RecentShareDataset, train_share
    from .protocols import (RESIDUAL_LAG, RESIDUAL_LEVEL, RESIDUAL_WEEKS, apply_history, fit_horizons, fit_patches,
                            history_input_len, own_level, residual_lag, residual_weeks)

    cfg = load_config(options.config)
    built_input_len = cfg.get("input_len")
    default_dir = default_ckpt_dir(cfg)
    if options.dataset:
        set_top_level(cfg, "dataset_name", options.dataset)
    for key, value in (("seed", options.seed), ("ckpt_save_dir", options.ckpt_dir)):
        if value is not None:
            set_top_level(cfg, key, value)
    if options.save_results:
        cfg.save_results = True
    if not options.test:
        cfg.eval_after_train = False
        logger.info("Validation only (--no-test): the test split is not evaluated")
    refresh(cfg, default_dir)
    for line in apply_overrides(cfg, options.overrides):
        logger.info(f"Override: {line}")
    if options.patience is not None:
        set_early_stopping(cfg, options.patience)
        logger.info(f"Override: early stopping after {options.patience} epochs without a better validation metric")
    cfg.gpus, cfg.gpu_num = options.gpus, len(options.gpus.split(",")) if options.gpus else 0
    info = ensure_dataset(cfg, logger)
    week = history_input_len(options.history, info.step_minutes)
    if week is not None and any(key == "input_len" for key, _ in options.overrides):
        raise UserError(f"--history {options.history} sets input_len ({week} steps); drop --set input_len, or use "
                        "--history recent.")
    for line in apply_history(cfg, options.history, info.step_minutes):
        logger.info(f"Override (--history {options.history}): {line}")
    for line in bind_dataset(cfg, info):
        logger.info(line)
    patches = fit_patches(cfg, built_input_len, {key for key, _ in options.overrides})
    if patches:
        logger.info(f"Override: {patches}")
        cfg._md5, cfg._serialized = "", {}
    check_windows(cfg, info)
    lag = residual_lag(options.history, info.step_minutes, cfg.output_len)
    if lag is not None:
        cfg[RESIDUAL_LAG] = lag
        cfg._md5, cfg._serialized = "", {}
        weeks = residual_weeks(options.history)
        if weeks is not None:
            cfg[RESIDUAL_WEEKS] = weeks
            logger.info(f"Override (--history {options.history}): the model forecasts the residual of the median of "
                        f"the same steps {lag}, {2 * lag}, ... {weeks * lag} steps earlier; its output is added to "
                        "that median")
        else:
            logger.info(f"Override (--history {options.history}): the model forecasts the residual of the copy of the "
                        f"same steps {lag} steps earlier; its output is added to that copy")
        level = own_level(cfg.model_config)
        if level is not None:
            cfg[RESIDUAL_LEVEL] = level
            logger.info(f"Override (--history {options.history}): the model adds each series' "
                        f"{'window mean' if level == 'mean' else 'last reading'} back to its output itself, so its output is "
                        "added to the copy less that level: it forecasts the residual")
    if options.train_fraction is not None:
        share = train_share(info, options.train_fraction, cfg.input_len, cfg.output_len,
                            cfg.get("train_batch_size") or cfg.get("batch_size") or 1)
        if share.steps < share.train_steps:
            cfg.dataset_type = RecentShareDataset
            cfg.dataset_params = dict(cfg.dataset_params, train_fraction=options.train_fraction)
            cfg._md5, cfg._serialized = "", {}
        logger.info(share.describe())
    check_values(info)
    horizons = fit_horizons(cfg)
    if horizons:
        logger.info(f"Override: {horizons}")
        cfg._md5, cfg._serialized = "", {}
    return RunSpec(options, cfg, info)


def check_run_folder(run_dir: Path, resume: bool, model: str) -> None:
    """Refuse, before touching it, a run folder this run would damage: a finished run (without --resume it would be
    trained over), or another model's run (--resume would rewrite its config and status)."""
    from .status import read_status

    if not run_dir.is_dir():
        return
    if read_status(run_dir).get("state") == RunState.FINISHED and not resume:
        raise UserError(f"--run-dir {run_dir} holds a finished run; training there would overwrite its checkpoints and "
                        "metrics. Give another --run-dir, or delete that folder first.")
    try:
        earlier = json.loads((run_dir / "cfg.json").read_text(encoding="utf-8"))["model"]["name"]
    except (OSError, ValueError, KeyError, TypeError):
        return
    if earlier != model:
        raise UserError(f"--run-dir {run_dir} holds a run of {earlier}, not {model}: "
                        f"{'resuming' if resume else 'training'} there would mix the two. Give another --run-dir.")


def check_resume(run_dir: Path, spec: RunSpec) -> None:
    """Refuse, before any file of the run changes, a `--resume` whose dataset changed since the run trained, or that
    asks for other settings than the run has (they would be recorded, but the checkpoint's optimizer and schedule
    would go on as before: see `trained_on`)."""
    record = read_json(run_dir / RECORD_FILE)
    if not record:
        return
    differ = settings_differences(record, Path(spec.dataset.folder).name, list(spec.options.overrides), spec.options.seed,
                                  spec.options.history, spec.options.train_fraction)
    if differ:
        raise UserError(f"--resume {run_dir}: this call asks for other settings than the run was trained with "
                        f"({'; '.join(differ)}). A resumed run goes on with its own settings and optimizer state; drop "
                        "the changes to resume it, or start a fresh run without --resume.")
    check_same_dataset(record, spec.dataset.folder, f"--resume {run_dir}")


def run(options: RunOptions, where: Optional[dict] = None) -> Path:
    from easytorch.utils import get_logger

    from .launch import evaluation_dir, latest_run_dir, launch_evaluation, launch_training, new_run_dir

    from .basicts_compat.runner import follow_stderr

    logger = get_logger("stvfm-plugin")
    follow_stderr()
    threads = set_threads(options.threads)
    (logger.warning if "WARNING" in threads else logger.info)(threads)
    logger.info(flush_denormals())
    spec = describe_run(options, logger)

    if options.eval_checkpoint:
        if options.resume:
            raise UserError("--eval and --resume cannot be combined.")
        record = read_json(Path(options.eval_checkpoint).parent / RECORD_FILE)
        check_same_dataset(record, spec.dataset.folder, f"--eval {options.eval_checkpoint}")
        if record and record.get("train_fraction") != options.train_fraction:
            trained = record.get("train_fraction")
            raise UserError(f"--eval {options.eval_checkpoint}: that run trained on "
                            + ("all of the training split" if trained is None else f"--train-fraction {trained:g}")
                            + ", and its scaler was fitted on that part; evaluate it with the same "
                            + ("(drop --train-fraction)." if trained is None else f"(--train-fraction {trained:g})."))
        run_dir = launch_evaluation(spec.in_folder(evaluation_dir(options.eval_checkpoint)))
    else:
        if options.run_dir:
            check_run_folder(options.run_dir, options.resume, spec.model_name)
            if options.resume and not any(options.run_dir.glob("*.pt")):
                where = "holds no checkpoint" if options.run_dir.is_dir() else "does not exist"
                raise UserError(f"--resume --run-dir {options.run_dir}: that folder {where}, so there is nothing to "
                                "resume. Drop --resume to start a fresh run there.")
            chosen = options.run_dir
        else:
            chosen = latest_run_dir(spec.cfg) if options.resume else new_run_dir(spec.cfg)
        if options.resume:
            check_resume(chosen, spec)
        if where is not None:
            where["run_dir"] = Path(chosen)
        run_dir = launch_training(spec.in_folder(chosen))
    logger.info(f"Results in {run_dir} ({'test_metrics.json, ' if options.test else ''}run_info.json).")
    return run_dir


def interrupted_line(run_dir: Optional[Path]) -> str:
    """What a Ctrl-C leaves, truthfully: a checkpoint `--resume` continues from, or nothing to resume."""
    if run_dir is None:
        return "interrupted before training began: nothing to resume."
    if any(Path(run_dir).glob("*.pt")):
        return (f"interrupted: {run_dir} keeps the last checkpoint; the same command with --resume --run-dir {run_dir} "
                "continues it.")
    return "interrupted before the first checkpoint: nothing to resume; run the command again (without --resume)."


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    where: dict = {}

    def action() -> Path:
        try:
            return run(options_from(args), where)
        except BaseException as e:  # before training starts (a failure in training is recorded by its launcher)
            refused_resume = args.resume and isinstance(e, UserError)  # the run is left exactly as it was
            if (not args.eval and not refused_resume and args.run_dir and is_run_folder(args.run_dir)
                    and run_owner(args.run_dir) is None):
                from .launch import record_end

                record_end(args.run_dir, e)  # left alone: a folder made for something else, one a live run holds
            raise

    return exit_status(action, lambda: interrupted_line(where.get("run_dir")))


if __name__ == "__main__":
    raise SystemExit(main())
