"""Reading a leaderboard folder: each `<Model>/seed-<k>/` run folder as a `SeedRun` (its state, metrics, run info,
config and a slice of its test forecasts for the figure)."""
from __future__ import annotations

from pathlib import Path
from typing import List

from ..errors import UserError
from ..status import run_process_alive
from .rows import ModelRow, SeedRun, unscorable
from ..files import read_json
from ..status import read_status
from ..records import Outcome
from .runs import SKIPPED, STARTED, model_folder, run_dir, stopped_by_cap


def collect(out: Path) -> tuple[dict, List[ModelRow]]:
    """The leaderboard's settings and one row per model (in the order it was run)."""
    out = Path(out)
    settings = read_json(out / "leaderboard.json")
    if not settings:
        raise UserError(f"{out} holds no leaderboard.json: run `python -m stvfm_plugin.leaderboard run` first "
                        "(or point --out at its folder).")
    started, skipped = read_json(out / STARTED), read_json(out / SKIPPED)
    models = list(settings["budget"]["models"])
    folders_of = {model_folder(m) for m in models}
    models += sorted(p.name.replace("@", ":", 1) for p in out.iterdir() if p.is_dir() and p.name not in folders_of
                     and p.name != "report" and any(p.glob("seed-*/status.json")))
    rows = []
    for model in models:
        runs = []
        folders = [p for p in (out / model_folder(model)).glob("seed-*") if p.is_dir() and p.name[5:].isdigit()]
        for folder in sorted(folders, key=lambda p: int(p.name[5:])):
            runs.append(seed_run(folder, f"{model}/{folder.name[5:]}" in skipped, settings.get("dataset_meta") or {}))
        for ledger, state in ((skipped, Outcome.SKIPPED), (started, Outcome.DELETED)):
            for key, value in ledger.items():
                name, _, seed = key.rpartition("/")
                if name == model and seed.isdigit() and int(seed) not in {r.seed for r in runs}:
                    error = "" if state is Outcome.SKIPPED else (
                        f"run folder {run_dir(out, model, int(seed))} is gone (started {value}); run the leaderboard "
                        "again to train it")
                    runs.append(SeedRun(int(seed), state, error=error))
        if model in settings["budget"].get("left_out", {}):  # what an earlier attempt left unfinished is no result
            runs = [r for r in runs if r.ended] + [SeedRun(0, Outcome.LEFT_OUT, error=settings["budget"]["left_out"][model])]
        runs.sort(key=lambda r: r.seed)
        rows.append(ModelRow(model, runs or [SeedRun(0, Outcome.NOT_STARTED)]))
    return settings, rows


def seed_run(folder: Path, skipped: bool, meta: dict) -> SeedRun:
    """The run in `folder` as the report tells it (`skipped`: the ledger says --skip-seeds-after-cap left it)."""
    status = read_status(folder)
    metrics, info = read_json(folder / "test_metrics.json"), read_json(folder / "run_info.json")
    error = status.get("error", "").removeprefix("error: ")
    if status.get("state"):
        state = Outcome(status["state"])
    else:  # no status yet: a live run is still building its model (it writes a status when training starts)
        state = Outcome.RUNNING if run_process_alive(folder) else Outcome.NOT_STARTED
    if state is Outcome.FINISHED and not metrics and info.get("tested", True):  # (untested: a `tune` run)
        state = Outcome.FAILED
    if state is Outcome.FINISHED and unscorable(metrics, info):
        state, error = Outcome.UNSCORABLE, unscorable(metrics, info)  # never ranked: NaN predictions are not a result
    if stopped_by_cap(status):
        state = Outcome.NOT_CONVERGED
    if state is Outcome.RUNNING and not run_process_alive(folder):
        state = Outcome.INTERRUPTED  # killed without a word (e.g. the session ended); the same command resumes it
    if skipped and state is not Outcome.FINISHED:
        state = Outcome.SKIPPED  # started once, then left by --skip-seeds-after-cap
    cfg = read_json(folder / "cfg.json")
    return SeedRun(int(folder.name.split("-")[1]), state, metrics, info, cfg, error,
                   forecast_sample(folder, meta, cfg) if state is Outcome.FINISHED else {})


#: the forecast figure: test forecasts at this horizon, for the evening rush hour of the first test day
FORECAST_HORIZON, RUSH_HOURS, FORECAST_SENSORS = 3, (15, 20), 3


def forecast_sample(folder: Path, meta: dict, cfg: dict) -> dict:
    """Truth and forecast `FORECAST_HORIZON` steps ahead, for the `FORECAST_SENSORS` busiest sensors, over the
    evening rush of the first test day (or the first 60 test windows when the data has no clock), rounded to
    3 decimals: small enough to commit with the summaries, so that the figure rebuilds too."""
    import datetime as dt

    import numpy as np

    results = Path(folder) / "test_results"
    if not (results / "prediction.npy").is_file() or not meta.get("split_lengths"):
        return {}
    prediction, truth = (np.load(results / f"{k}.npy") for k in ("prediction", "targets"))
    prediction, truth = (a[..., 0] if a.ndim == 4 else a for a in (prediction, truth))  # [S, T_out, N]
    h = min(FORECAST_HORIZON, truth.shape[1])
    first = meta["split_lengths"]["train"] + meta["split_lengths"]["val"] + \
        (cfg.get("dataset_params") or {}).get("input_len", 12) + h - 1  # step of window 0's target at horizon h
    windows = np.arange(truth.shape[0])
    times = None
    if meta.get("start_time") and meta.get("frequency (minutes)"):
        start, step = dt.datetime.fromisoformat(meta["start_time"]), dt.timedelta(minutes=meta["frequency (minutes)"])
        times = [start + (first + int(i)) * step for i in windows]
        day = times[0].date()
        rush = [i for i, t in zip(windows, times) if t.date() == day and RUSH_HOURS[0] <= t.hour < RUSH_HOURS[1]]
        if not rush:  # the first test day ends before the rush: the next day's
            day = day + dt.timedelta(days=1)
            rush = [i for i, t in zip(windows, times) if t.date() == day and RUSH_HOURS[0] <= t.hour < RUSH_HOURS[1]]
        windows = np.array(rush) if rush else windows[:60]
    else:
        windows = windows[:60]
    sensors = np.argsort(-np.nan_to_num(np.nanstd(truth[windows, h - 1], axis=0)), kind="stable")[:FORECAST_SENSORS]
    return {"horizon": int(h), "sensors": [int(n) for n in sensors],
            "times": [times[i].isoformat(timespec="minutes") for i in windows] if times else [int(i) for i in windows],
            "truth": np.round(truth[windows, h - 1][:, sensors].T, 3).tolist(),
            "prediction": np.round(prediction[windows, h - 1][:, sensors].T, 3).tolist()}


def deleted_runs(rows: List[ModelRow]) -> List[str]:
    """One warning per run that was started but whose folder is gone."""
    return [f"{row.model} seed {r.seed}: {r.error}" for row in rows for r in row.runs if r.state is Outcome.DELETED]
