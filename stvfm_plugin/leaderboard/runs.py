"""Training every model of a leaderboard, each in its own process, with resume and failure records.

Folder of one leaderboard (`--out`, default `leaderboard/<dataset>`):

    leaderboard.json            the budget, models, seeds, overrides and software versions of the latest call; its
                                models are that call's, then those of earlier calls here (the report keeps them)
    started.json                every run ever started here ("<Model>/<seed>" -> time), so that a deleted run
                                folder is reported as deleted, not as never started
    skipped.json                the runs not trained because an earlier seed of their model was stopped by the time
                                cap ("<Model>/<seed>" -> why; only with `Budget.skip_after_cap`)
    <Model>/seed-<k>/           the BasicTS run folder (cfg.json, checkpoints, test_metrics.json, run_info.json)
    <Model>/seed-<k>/status.json  written by the run itself: state, epoch, validation metric, stop reason, error
    <Model>/seed-<k>/launch.json  written here: the command, when it started, wall seconds, exit status
    <Model>/seed-<k>.log        the full output of that run (kept for people; nothing here reads it)
    in-use.lock                 "<pid> <time>" of the `run` or `tune` call working here (see `exclusive_use`)
"""
from __future__ import annotations

import json
import os
import platform
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional

from ..baselines import BUILDERS
from ..data.info import dataset_folder
from ..data.layout import META_FILE
from ..errors import UserError
from ..files import atomic_write_text, read_json
from ..references import REFERENCES
from ..status import folder_lock, read_status, run_owner
from ..records import Outcome, RunState

#: leaderboard names = config file stems: baselines_cfg/<Model>_<Dataset>.py where a dataset has tuned settings,
#: else the generic baselines_cfg/<Model>.py run with --dataset <Dataset>
MODELS = list(BUILDERS)


@dataclass
class Budget:
    """What every model of one leaderboard gets."""

    dataset: str
    models: List[str]
    seeds: List[int]
    epochs: int
    patience: int
    overrides: Dict[str, List[str]] = field(default_factory=dict)  # model -> ["key=value", ...]
    config_dir: str = "baselines_cfg"
    threads: Optional[int] = None  # torch CPU threads per run (None: the runner's default)
    max_minutes: Optional[float] = None  # wall-clock cap on each run's training (None: none)
    kind: str = "convergence"  # "convergence" (early stopping) or "equal epochs" (every model the same epochs)
    test: bool = True  # False: validation only (`tune`): runs train with --no-test, the test split stays unseen
    skip_after_cap: bool = False  # once a seed of a model is stopped by the time cap, do not train its other seeds
    history: str = "recent"  # how much history every row reads (`protocols.HISTORIES`), the references' windows too
    left_out: Dict[str, str] = field(default_factory=dict)  # model -> why this leaderboard does not train it (a row)

    def config_path(self, model: str) -> Path:
        return config_file(self.config_dir, model, self.dataset)


def config_file(config_dir: str | Path, model: str, dataset: str) -> Path:
    """The config of row `model` for `dataset`: the model's own file for it where there is one, else the generic one."""
    base = split_variant(model)[0]
    tuned = Path(config_dir) / f"{base}_{dataset}.py"
    return tuned if tuned.is_file() else Path(config_dir) / f"{base}.py"


#: row keys that are options of the run, not config entries (`STID:train_fraction=0.1` -> `--train-fraction 0.1`)
RUN_OPTIONS = {"train_fraction": "--train-fraction"}


def split_variant(label: str) -> tuple[str, List[str]]:
    """A leaderboard row `MODEL` or `MODEL:key=value,key=value` (an ablation) -> the model and its overrides.

    Keys without a dot are `model_config` fields (`STVFM:vfm_layers=0`, `STVFM:pretrained=False`); dotted keys
    are config entries as in `--set` (`STVFM:optimizer_params.lr=1e-4`, `STVFM:lr_scheduler_params.milestones=[25,50]`).
    `RUN_OPTIONS` keys are options of the run (`run_options_of`), not overrides.
    """
    base, _, spec = label.partition(":")
    overrides = []
    for item in _row_items(label, spec):
        if item.partition("=")[0] not in RUN_OPTIONS:
            overrides.append(item if "." in item.partition("=")[0] else f"model_config.{item}")
    return base, overrides


def run_options_of(label: str) -> List[str]:
    """The command-line options a row's `RUN_OPTIONS` keys stand for (`STID:train_fraction=0.1` -> `--train-fraction
    0.1`)."""
    options = []
    for item in _row_items(label, label.partition(":")[2]):
        key, _, value = item.partition("=")
        if key in RUN_OPTIONS:
            options += [RUN_OPTIONS[key], value]
    return options


def _row_items(label: str, spec: str) -> List[str]:
    items = list(filter(None, _top_level_items(spec)))
    for item in items:
        key, eq, _ = item.partition("=")
        if not eq or not key:
            raise UserError(f"--models {label!r}: write an ablation as MODEL:key=value[,key=value], e.g. "
                            "STVFM:vfm_layers=0 or STVFM:pretrained=False.")
    return items


def _top_level_items(spec: str) -> List[str]:
    """`a=1,b=[2,3]` -> `["a=1", "b=[2,3]"]`: commas inside brackets belong to a value (a list or tuple)."""
    items, depth, start = [], 0, 0
    for i, char in enumerate(spec):
        depth += (char in "[(") - (char in "])")
        if char == "," and depth == 0:
            items.append(spec[start:i])
            start = i + 1
    return items + [spec[start:]]


def software_versions() -> Dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version(), "platform": platform.platform()}
    for package in ("torch", "basicts", "timm", "transformers", "einops", "stvfm-plugin"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "not installed"
    found["cpu_threads"] = str(__import__("torch").get_num_threads())
    return found


def describe_device(gpus: str) -> str:
    """`cpu`, or the GPUs a `-g` value names with their model, e.g. `GPU 0 (NVIDIA H100 80GB HBM3)`."""
    if gpus == "cpu":
        return "cpu"
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return ", ".join(f"GPU {i}" + (f" ({torch.cuda.get_device_name(int(i))})" if i.isdigit() and int(i) < count else "")
                     for i in (part.strip() for part in gpus.split(",")))


def dataset_meta(dataset: str) -> dict:
    """The prepared dataset's meta.json, or {}."""
    return read_json(dataset_folder(dataset) / META_FILE)


def run_dir(out: Path, model: str, seed: int) -> Path:
    return out / model_folder(model) / f"seed-{seed}"


def model_folder(label: str) -> str:
    """The folder name of a leaderboard row (`STVFM:vfm_layers=0` -> `STVFM@vfm_layers=0`)."""
    return label.replace(":", "@").replace("/", "_")


def stopped_by_cap(status: dict) -> bool:
    """A run's status says it ended by the time cap: tested, but not converged."""
    return status.get("state") == RunState.FINISHED and status.get("converged") is False


def _write_launch(folder: Path, **launch) -> None:
    atomic_write_text(folder / "launch.json", json.dumps(launch, indent=2))


def train_command(budget: Budget, model: str, seed: int, folder: Path, device: str, resume: bool) -> List[str]:
    if split_variant(model)[0] in REFERENCES:  # trained on nothing: the same numbers for every seed
        return [sys.executable, "-m", "stvfm_plugin.references", "--dataset", budget.dataset, "--method",
                split_variant(model)[0], "--run-dir", str(folder), "--history", budget.history] + run_options_of(model)
    command = [sys.executable, "-m", "stvfm_plugin.run", "-c", str(budget.config_path(model)),
               "--dataset", budget.dataset, "-g", device,
               "--run-dir", str(folder), "--seed", str(seed), "--patience", str(budget.patience),
               "--save-results" if budget.test else "--no-test", "--set", f"num_epochs={budget.epochs}",
               "--history", budget.history]
    if budget.threads is not None:
        command += ["--threads", str(budget.threads)]
    if budget.max_minutes is not None:
        command += ["--max-minutes", f"{budget.max_minutes:g}"]
    base, changes = split_variant(model)
    inherited = budget.overrides.get(base, []) if base != model else []  # an ablation row is its model, changed
    for item in inherited + budget.overrides.get(model, []) + changes:
        command += ["--set", item]
    return command + run_options_of(model) + (["--resume"] if resume else [])


#: the lock file of a leaderboard folder in use
LOCK_FILE = "in-use.lock"
#: ledgers of the leaderboard folder (see the module docstring)
STARTED = "started.json"
SKIPPED = "skipped.json"


def exclusive_use(out: Path):
    """Hold the folder `out` for one `run` or `tune` call. A second call on the same folder fails at once: both would
    rewrite `leaderboard.json` and its report, and could train the same run twice. A lock left by a killed call is
    taken over."""
    out.mkdir(parents=True, exist_ok=True)
    return folder_lock(out / LOCK_FILE, lambda owner, since: (
        f"{out} is in use by another leaderboard call (pid {owner}, since {since}). Wait for it to end, or give this "
        "call its own --out and merge the two later with `python -m stvfm_plugin.leaderboard report --out <that "
        "folder> --report-dir <the report folder>`."))


def run_leaderboard(budget: Budget, out: Path, device: str = "cpu", echo: Callable[[str], None] = print,
                    recorded: Optional[Dict[tuple, str]] = None,
                    ended: Callable[[], None] = lambda: None) -> Dict[str, str]:
    """Train and test every (model, seed) not finished yet; returns model/seed -> final state.

    `recorded`: (model, seed) -> summary file of the runs a report already holds as ended; those are skipped when
    their run folder is not here (a fresh checkout has the committed summaries, not the run folders).
    `ended`: called after each run this call trained has ended (finished, failed or diverged), e.g. to write the report
    then, so that a call cut short (a session's end) loses none of the runs that ended in it.
    """
    references = [m for m in budget.models if split_variant(m)[0] in REFERENCES]
    if references and not budget.test:
        raise UserError(f"{', '.join(references)}: the naive references learn nothing and are scored on the test split; "
                        "they are leaderboard rows (`run`), not tuning candidates.")
    missing = [m for m in budget.models if split_variant(m)[0] not in REFERENCES and not budget.config_path(m).is_file()]
    if missing:
        raise UserError(f"No config for {', '.join(missing)}: expected "
                        + ", ".join(str(budget.config_path(m)) for m in missing)
                        + f". Known models: {', '.join(MODELS)}.")
    out.mkdir(parents=True, exist_ok=True)
    earlier = read_json(out / "leaderboard.json").get("budget", {})
    # a row left out now, or by an earlier call, stays in the report with its reason, until --models trains it
    left_out = {m: why for m, why in {**earlier.get("left_out", {}), **budget.left_out}.items() if m not in budget.models}
    saved = dict(asdict(budget), models=list(dict.fromkeys([*budget.models, *earlier.get("models", []), *left_out])),
                 overrides={**earlier.get("overrides", {}), **budget.overrides}, left_out=left_out)
    if not left_out:
        del saved["left_out"]  # (the record of a leaderboard that leaves nothing out is as it was before the option)
    (out / "leaderboard.json").write_text(json.dumps(
        {"budget": saved, "software": software_versions(), "device": describe_device(device),
         "dataset_meta": dataset_meta(budget.dataset)}, indent=2))
    states: Dict[str, Outcome] = {}
    capped = _capped_seeds(budget, out, recorded or {})
    for model in (m for m in budget.models if m not in capped):  # no run of it is capped under this budget (a larger
        for seed in budget.seeds:                                 # cap reopened them): its skipped seeds train now
            _record(out, SKIPPED, model, seed, None)
    total = len(budget.models) * len(budget.seeds)
    k = 0
    for model in budget.models:
        for seed in budget.seeds:
            k += 1
            folder = run_dir(out, model, seed)
            tag = f"[{budget.dataset} {k}/{total}] {model} seed {seed}"
            if read_status(folder).get("state") == RunState.FINISHED and _has_result(folder, budget) \
                    and not _capped_below(folder, budget):
                echo(f"{tag}: already finished, skipped")
                states[f"{model}/{seed}"] = Outcome.FINISHED
                continue
            owner = run_owner(folder)
            if owner is not None:  # e.g. a run that outlived the call that started it: never two in one folder
                echo(f"{tag}: still training in process {owner} (started by an earlier call), left to it; run this "
                     "command again when it has ended to collect it")
                states[f"{model}/{seed}"] = Outcome.RUNNING
                continue
            if (model, seed) in (recorded or {}) and not folder.is_dir():
                echo(f"{tag}: ended in the report ({recorded[(model, seed)]}; its run folder is not here), skipped; "
                     "delete that summary to train it again")
                states[f"{model}/{seed}"] = Outcome.FINISHED
                continue
            if budget.skip_after_cap and model in capped:
                why = f"seed {capped[model]} was stopped by the {budget.max_minutes:g}-minute time cap"
                echo(f"{tag}: not trained: {why} (--skip-seeds-after-cap: each seed would cost the full cap and could "
                     "not enter the means and ranks)")
                _record(out, SKIPPED, model, seed, why)
                states[f"{model}/{seed}"] = Outcome.SKIPPED
                continue
            resume = folder.is_dir() and any(folder.glob("*.pt"))
            _record(out, SKIPPED, model, seed, None)  # trained after all (by a call without --skip-seeds-after-cap)
            states[f"{model}/{seed}"] = _train_one(budget, model, seed, folder, device, resume, tag, echo)
            if stopped_by_cap(read_status(folder)):
                capped.setdefault(model, seed)
            ended()
    return states


def _capped_below(folder: Path, budget: Budget) -> bool:
    """The run in `folder` was stopped by a smaller time cap than the budget's: it resumes and trains on."""
    if not stopped_by_cap(read_status(folder)):
        return False
    cap = read_json(folder / "run_info.json").get("max_minutes")
    return cap is not None and (budget.max_minutes is None or cap < budget.max_minutes)


def _capped_seeds(budget: Budget, out: Path, recorded: Dict[tuple, str]) -> Dict[str, int]:
    """model -> its first seed (of any call) that the time cap stopped, in this folder or in the report's summaries."""
    capped: Dict[str, int] = {}
    for model in budget.models:
        here = [int(folder.name[5:]) for folder in (out / model_folder(model)).glob("seed-*")
                if folder.name[5:].isdigit() and stopped_by_cap(read_status(folder)) and not _capped_below(folder, budget)]
        there = [seed for (name, seed), summary in recorded.items()
                 if name == model and Outcome.of(read_json(Path(summary)).get("state")) is Outcome.NOT_CONVERGED]
        if here or there:
            capped[model] = min(here + there)
    return capped


def _record(out: Path, ledger_file: str, model: str, seed: int, value: Optional[str]) -> None:
    """Enter "<model>/<seed>" -> value into a ledger of the leaderboard folder (the first entry of a run stays), or
    take the run out of it (value None)."""
    ledger, key = read_json(out / ledger_file), f"{model}/{seed}"
    if value is None and key not in ledger:
        return
    if value is None:
        del ledger[key]
    else:
        ledger.setdefault(key, value)
    atomic_write_text(out / ledger_file, json.dumps(ledger, indent=2))


def _train_one(budget: Budget, model: str, seed: int, folder: Path, device: str, resume: bool, tag: str,
               echo: Callable[[str], None], poll_seconds: float = 0.5) -> Outcome:
    _record(folder.parent.parent, STARTED, model, seed, time.strftime("%Y-%m-%d %H:%M:%S"))
    command = train_command(budget, model, seed, folder, device, resume)
    log_path = folder.parent / f"{folder.name}.log"
    folder.mkdir(parents=True, exist_ok=True)
    echo(f"{tag}: {'resuming' if resume else 'training'} ({' '.join(command[1:])})")
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    _write_launch(folder, command=command, started=started, log=str(log_path))
    start = time.time()
    shown = None
    with open(log_path, "a", encoding="utf-8") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                   env={**os.environ, "PYTHONUNBUFFERED": "1"})
        try:
            while True:
                done = process.poll() is not None
                status = _status_or_empty(folder)
                if status.get("state") == RunState.RUNNING and status.get("epoch") != shown:
                    shown = status.get("epoch")
                    echo(f"{tag}: {_progress(status)}")
                if done:
                    break
                time.sleep(poll_seconds)
        except KeyboardInterrupt:
            process.send_signal(signal.SIGINT)  # the run records "interrupted" itself and keeps its checkpoint
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
            raise
    seconds = time.time() - start
    _write_launch(folder, command=command, started=started, log=str(log_path), wall_seconds=seconds,
                  returncode=process.returncode)
    status = _status_or_empty(folder)
    if process.returncode == 0 and status.get("state") == RunState.FINISHED and _has_result(folder, budget):
        converged = "" if status.get("converged", True) else ", NOT converged"
        result = (f"test MAE {read_json(folder / 'test_metrics.json')['overall']['MAE']:.4f}" if budget.test
                  else f"best validation {status.get('metric', 'MAE')} {status.get('best_val', float('nan')):.4f} (not tested)")
        echo(f"{tag}: finished in {_took(seconds, resume, read_json(folder / 'run_info.json'))} "
             f"({status.get('stop_reason', '?')} after epoch {status.get('epoch')}{converged}), {result}")
        return Outcome.FINISHED
    error = status.get("error") or f"exit status {process.returncode} without a recorded error"
    outcome = Outcome.DIVERGED if status.get("state") == RunState.DIVERGED else Outcome.FAILED
    echo(f"{tag}: {outcome.value.upper()} (exit {process.returncode}): {error} -- full output in {log_path}; "
         "going on with the next model")
    return outcome


def _took(wall_seconds: float, resumed: bool, run_info: dict) -> str:
    """What a finished run took: the wall time of this call and, when it resumed an earlier one, the training time of
    all its epochs (the run's ``run_info.json`` keeps every epoch's, across resumes)."""
    if not resumed:
        return f"{wall_seconds / 60:.1f} min"
    trained = sum(run_info.get("seconds_per_epoch") or [])
    return f"{wall_seconds / 60:.1f} min since resuming, {trained / 60:.1f} min of training in all its epochs"


def _has_result(folder: Path, budget: Budget) -> bool:
    """What a finished run leaves: its test metrics, or (validation only) its best validation metric."""
    if budget.test:
        return (folder / "test_metrics.json").is_file()
    return bool(read_json(folder / "run_info.json").get("best_metrics"))


def _status_or_empty(folder: Path) -> dict:
    try:
        return read_status(folder)
    except UserError:  # being replaced right now: read it at the next poll
        return {}


def _progress(status: dict) -> str:
    def num(key: str) -> str:
        return f"{status[key]:.4f}" if isinstance(status.get(key), (int, float)) else "?"

    if not status.get("epoch"):
        return f"training started, epoch 1/{status.get('num_epochs')} under way"
    return (f"epoch {status.get('epoch')}/{status.get('num_epochs')}, val {status.get('metric', 'MAE')} {num('val')} "
            f"(best {num('best_val')})")
