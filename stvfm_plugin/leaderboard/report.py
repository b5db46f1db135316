"""The leaderboard report: Markdown, CSV and two PNG figures, rebuilt from small per-run summaries.

Nothing is retrained: `collect` reads each `<Model>/seed-<k>/` folder (status.json, test_metrics.json,
run_info.json, cfg.json); `export_summaries` writes what the report needs of each run (metrics, epochs,
stop reason, cost, the protocol part of its config and the config's hash; file-system paths reduced to
file names) as `<report dir>/runs/<Model>/seed-<k>.json` beside `settings.json`; the report is built from
those files alone, so a report folder committed with them rebuilds byte for byte anywhere
(`python -m stvfm_plugin.leaderboard report --report-dir <folder>`, no run folders needed).
"""
from __future__ import annotations

import csv
import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional

from ..errors import UserError
from ..references import REFERENCES
from ..status import run_process_alive
from .runs import (SKIPPED, SKIPPED_STATE, STARTED, dataset_meta, model_folder, read_json, read_status, run_dir,
                   split_variant, stopped_by_cap)

METRICS = ("MAE", "RMSE", "MAPE")
HORIZONS = (3, 6, 12)
#: how each kind of `peak_memory_mb` in run_info.json was measured
MEMORY_KINDS = {"process_peak_rss": "peak resident memory of the training process (includes Python, torch and the data)",
                "cuda_max_allocated": "peak CUDA memory allocated by torch"}
#: config entries that must agree between models for the comparison to be fair
PROTOCOL_KEYS = ("dataset_name", "null_val", "scaler", "norm_each_channel", "rescale", "metrics", "eval_horizons",
                 "dataset_params", "num_epochs")


@dataclass
class SeedRun:
    seed: int
    state: str
    metrics: Dict[str, Dict[str, float]] = field(default_factory=dict)
    info: dict = field(default_factory=dict)
    cfg: dict = field(default_factory=dict)
    error: str = ""
    forecast: dict = field(default_factory=dict)  # a slice of test forecasts for the figure (see forecast_sample)

    @property
    def ended(self) -> bool:
        """Will not train further: finished, stopped by the time cap, or skipped after another seed was."""
        return self.state in ("finished", SKIPPED_STATE) or self.state.startswith("not converged")


def mean_std(values: List[float]) -> tuple[Optional[float], Optional[float]]:
    """Mean and sample std (None without values, std None with fewer than two)."""
    if not values:
        return None, None
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, None
    return mean, math.sqrt(sum((x - mean) ** 2 for x in values) / (len(values) - 1))


def _counted(items: List[str]) -> str:
    """`a, b x2`: each distinct item once, with its count when above one."""
    return ", ".join(f"{k}{f' x{items.count(k)}' if items.count(k) > 1 else ''}" for k in sorted(set(items)))


@dataclass
class ModelRow:
    model: str
    runs: List[SeedRun]
    rank: Optional[int] = None

    @property
    def finished(self) -> List[SeedRun]:
        return [r for r in self.runs if r.state == "finished"]

    @property
    def is_variant(self) -> bool:
        """An ablation row (`MODEL:key=value`), reported against its model, not ranked."""
        return ":" in self.model

    @property
    def is_reference(self) -> bool:
        """A naive reference (trained on nothing): ranked with the models, never the best baseline."""
        return self.model in REFERENCES

    @property
    def capped(self) -> List[SeedRun]:
        """Runs stopped by the time cap: tested, but left out of means and ranks."""
        return [r for r in self.runs if r.state.startswith("not converged")]

    def states(self) -> str:
        """The runs' states with counts, e.g. `finished x2, running`."""
        found = [r.state for r in self.runs]
        return _counted(found)

    def values(self, group: str, metric: str) -> List[float]:
        scale = 100.0 if metric == "MAPE" else 1.0  # MAPE in %
        return [r.metrics[group][metric] * scale for r in self.finished if group in r.metrics]

    def mean(self, group: str, metric: str) -> Optional[float]:
        return mean_std(self.values(group, metric))[0]

    def std(self, group: str, metric: str) -> Optional[float]:
        return mean_std(self.values(group, metric))[1]

    def best_val(self) -> List[float]:
        """Best validation MAE of each finished run that recorded it (summaries written before 2026-11-29 did not)."""
        return [r.info["best_metrics"]["val/MAE"] for r in self.finished
                if "val/MAE" in (r.info.get("best_metrics") or {})]

    def best_val_cell(self) -> str:
        """`mean ± std` of the best validation MAE, with how many seeds recorded it when not all did."""
        values = self.best_val()
        if not values:
            return "—"
        partial = f" ({len(values)} of {len(self.finished)} seeds)" if len(values) < len(self.finished) else ""
        return _fmt(*mean_std(values)) + partial

    def info_mean(self, key: str) -> Optional[float]:
        v = [r.info[key] for r in self.finished if isinstance(r.info.get(key), (int, float))]
        return sum(v) / len(v) if v else None

    def seconds_per_epoch(self) -> Optional[float]:
        v = [s for r in self.finished for s in r.info.get("seconds_per_epoch", [])]
        return sum(v) / len(v) if v else None

    def epochs_run(self) -> str:
        return "/".join(str(r.info.get("epochs_run", "?")) for r in self.finished)

    def stop_reasons(self) -> str:
        """Why the finished runs stopped, e.g. `early stopping x2, max epochs`."""
        found = [r.info.get("stop_reason") or "?" for r in self.finished]
        return _counted(found)

    def peak_memory(self) -> Optional[float]:
        v = [r.info["peak_memory_mb"]["mb"] for r in self.finished if r.info.get("peak_memory_mb")]
        return max(v) if v else None

    def train_seconds(self) -> Optional[float]:
        v = [sum(r.info.get("seconds_per_epoch", [])) for r in self.finished]
        return sum(v) / len(v) if v else None

    def backbone_lines(self) -> List[str]:
        """The build-report lines that name a pretrained backbone, its weights or a wrapped network."""
        return [l for r in self.finished[:1] for l in r.info.get("build_report", [])
                if "weights" in l or "backbone:" in l or "network:" in l]

    def cpu_threads(self) -> Optional[List[int]]:
        """Torch's CPU thread counts the finished runs trained with, or None if a run did not record them."""
        if not self.finished or any("cpu_threads" not in r.info for r in self.finished):
            return None
        return sorted({n for r in self.finished for n in r.info["cpu_threads"]})

    def memory_kinds(self) -> List[str]:
        return sorted({r.info["peak_memory_mb"]["kind"] for r in self.finished if r.info.get("peak_memory_mb")})


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
            status = read_status(folder)
            # no status yet: a live run is still building its model (it writes a status when training starts)
            state = status.get("state") or ("running" if run_process_alive(folder) else "not started")
            metrics, info = read_json(folder / "test_metrics.json"), read_json(folder / "run_info.json")
            if state == "finished" and not metrics and info.get("tested", True):  # (untested: a `tune` run)
                state = "failed"
            if state == "finished" and unscorable(metrics, info):
                state = unscorable(metrics, info)  # never ranked: NaN predictions are not a result
            if stopped_by_cap(status):
                state = f"not converged ({status.get('stop_reason')})"
            if state == "running" and not run_process_alive(folder):
                state = "interrupted"  # killed without a word (e.g. the session ended); the same command resumes it
            if f"{model}/{folder.name[5:]}" in skipped and state != "finished":
                state = SKIPPED_STATE  # started once, then left by --skip-seeds-after-cap
            cfg = read_json(folder / "cfg.json")
            runs.append(SeedRun(int(folder.name.split("-")[1]), state, metrics, info,
                                cfg, status.get("error", "").removeprefix("error: "),
                                forecast_sample(folder, settings.get("dataset_meta") or {}, cfg)
                                if state == "finished" else {}))
        for ledger, state in ((skipped, SKIPPED_STATE), (started, "deleted")):
            for key, value in ledger.items():
                name, _, seed = key.rpartition("/")
                if name == model and seed.isdigit() and int(seed) not in {r.seed for r in runs}:
                    error = "" if state == SKIPPED_STATE else (
                        f"run folder {run_dir(out, model, int(seed))} is gone (started {value}); run the leaderboard "
                        "again to train it")
                    runs.append(SeedRun(int(seed), state, error=error))
        runs.sort(key=lambda r: r.seed)
        rows.append(ModelRow(model, runs or [SeedRun(0, "not started")]))
    return settings, rows


def unscorable(metrics: dict, info: dict) -> str:
    """Why a finished run's test result cannot be ranked ('' when it can): predictions that are not finite, or metrics
    that are not (e.g. RMSE overflowing on readings near 1e30)."""
    if info.get("nonfinite_predictions"):
        return f"non-finite predictions ({info['nonfinite_predictions']:,} scored readings)"
    if any(not math.isfinite(v) for group in metrics.values() for v in group.values()):
        return "non-finite metrics"
    return ""


def _fmt(mean: Optional[float], std: Optional[float] = None, digits: int = 3) -> str:
    if mean is None:
        return "—"
    return f"{mean:.{digits}f}" + (f" ± {std:.{digits}f}" if std is not None else "")


def _count(n: Optional[float]) -> str:
    return "—" if n is None else f"{int(n):,}"


def protocol_differences(rows: List[ModelRow]) -> List[str]:
    """Config entries of `PROTOCOL_KEYS` on which finished runs disagree (should be none)."""
    found = []
    runs = [(row.model, r) for row in rows if not row.is_reference for r in row.finished if r.cfg]
    for key in PROTOCOL_KEYS:
        values = {json.dumps(r.cfg.get(key), sort_keys=True) for _, r in runs}
        if len(values) > 1:
            found.append(f"{key}: " + "; ".join(f"{m}={json.dumps(r.cfg.get(key))}" for m, r in runs))
    return found


def markdown(settings: dict, rows: List[ModelRow]) -> str:
    budget = settings["budget"]
    dataset = budget["dataset"]
    seeds = budget["seeds"]
    lines = [f"# Leaderboard: {dataset}", "",
             "Generated by `python -m stvfm_plugin.leaderboard report` from the per-run summaries in `runs/` (and "
             "`settings.json`) beside it; do not edit by hand.",
             "", f"Test metrics of the best-validation checkpoint, in data units; MAPE in %. "
             f"{'Mean ± sample std over seeds' if len(seeds) > 1 else 'One run, seed'} {', '.join(map(str, seeds))}. "
             "Rank by overall test MAE.", "",
             "| Rank | Model | MAE | RMSE | MAPE % | MAE h3 | MAE h6 | MAE h12 | Trainable params | Total params "
             "| Epochs run | Stopped by | Train s/epoch | Inference ms/batch | Peak memory MB | Status |",
             "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---|"]
    for row in (r for r in rows if not r.is_variant):
        status = row.states()
        errors = "; ".join(sorted({r.error for r in row.runs if r.error}))
        batch = next((r.info.get("batch_size") for r in row.finished if r.info.get("batch_size")), None)
        lines.append("| " + " | ".join([
            str(row.rank or "—"), row.model,
            *[_fmt(row.mean("overall", m), row.std("overall", m)) for m in METRICS],
            *[_fmt(row.mean(f"horizon_{h}", "MAE"), row.std(f"horizon_{h}", "MAE")) for h in HORIZONS],
            _count(row.info_mean("trainable_params")), _count(row.info_mean("total_params")), row.epochs_run() or "—",
            row.stop_reasons() or "—",
            _fmt(row.seconds_per_epoch(), digits=1),
            _fmt(row.info_mean("inference_ms_per_batch"), digits=1) + (f" (batch {batch})" if batch else ""),
            _fmt(row.peak_memory(), digits=0),
            status + (f": {errors.replace('|', '/')}" if errors else "")]) + " |")
    notes = sorted({r.info["mape_note"] for row in rows for r in row.finished if r.info.get("mape_note")})
    lines += ["", f"MAPE is {notes[0]}."] if notes else []
    lines += close_ranks(rows) + reference_flags(rows) + capped_runs(rows) + ablations(rows) + verdict(rows, seeds)
    lines += ["", "## Per horizon (all metrics)", "",
              "| Model | " + " | ".join(f"{m}{' %' if m == 'MAPE' else ''} h{h}" for h in HORIZONS for m in METRICS) + " |",
              "|---|" + "---:|" * (len(HORIZONS) * len(METRICS))]
    for row in display_order(rows):
        if row.finished:
            lines.append(f"| {row.model} | " + " | ".join(
                _fmt(row.mean(f"horizon_{h}", m), row.std(f"horizon_{h}", m)) for h in HORIZONS for m in METRICS) + " |")
    if any(r.runs and r.runs[0].forecast for r in rows):
        lines += ["", "![Forecasts against the truth at a rush hour](forecasts.png)"]
    lines += ["", "![Test MAE per horizon](horizon_mae.png)", "",
              "![Test MAE against training time](accuracy_vs_time.png)", "", "## Protocol", ""]
    first = next((r.cfg for row in rows for r in row.finished if r.cfg), {})
    params = first.get("dataset_params", {})
    meta = settings.get("dataset_meta") or dataset_meta(dataset)
    split = meta.get("split_lengths")
    raw = [f for f in (meta.get("source") or {}).get("files", []) if isinstance(f, dict)]
    lines += [
        f"- Dataset: {dataset}" + (f", {meta.get('num_time_steps')} steps x {meta.get('num_nodes')} nodes, "
                                   f"{meta.get('frequency (minutes)')}-minute steps, {meta.get('missing_share', 0) * 100:.2f} % missing"
                                   if meta else ""),
        "- Raw data: " + (", ".join(f"`{f['file']}` (sha256 `{f['sha256']}`)" for f in raw)
                          if raw else "not recorded (prepared before raw files were hashed, or synthetic: "
                          + json.dumps((meta.get("source") or {}).get("synthetic")) + ")"),
        "- Split (chronological): " + (", ".join(f"{k} {v}" for k, v in split.items()) if split else "see meta.json"),
        f"- Input / output lengths: {params.get('input_len')} -> {params.get('output_len')}",
        f"- Scaler: {first.get('scaler', {}).get('name')} (norm_each_channel={first.get('norm_each_channel')}, "
        "fitted on the training split); metrics in data units (rescale=True)",
        (f"- Null value: {first.get('null_val')} (masked in loss and metrics)" if _is_marker(first.get("null_val"))
         else "- Null value: none (every reading is scored)"),
        f"- Metrics: masked {', '.join(first.get('metrics', []))}, horizons {first.get('eval_horizons')}; "
        "model selection by validation MAE",
        _budget_line(budget) + f"; seeds {', '.join(map(str, seeds))}",
        *converged_under_smaller_caps(rows, budget.get("max_minutes")),
        f"- Device: {settings.get('device')}; software: " + ", ".join(
            f"{k} {v}" for k, v in settings.get("software", {}).items() if k != "cpu_threads"),
        *["- Runs kept from an earlier call ran with: " + ", ".join(
            [f"device {call['device']}"] * (call.get("device") != settings.get("device")) +
            [f"{k} {v}" for k, v in (call.get("software") or {}).items()
             if k != "cpu_threads" and v != settings.get("software", {}).get(k)]) for call in settings.get("earlier_calls", [])],
    ]
    overrides = budget.get("overrides") or {}
    if overrides:
        lines.append("- Overrides of the committed configs: " + "; ".join(
            f"{m}: {', '.join(v)}" for m, v in overrides.items()))
    lines += ["- Each model's own optimiser settings: see `stvfm_plugin/baselines.py` and `baselines_cfg/`.", "",
              "### How cost was measured", "",
              f"- Train s/epoch: wall clock of the training loop per epoch, on {settings.get('device')}, "
              + thread_note(settings, rows) + ".",
              "- Inference ms/batch: mean wall clock of one forward pass on a test batch, first batch excluded, at each "
              "model's own batch size (in brackets): compare per sample, not per batch.",
              "- Peak memory: " + ", ".join(sorted({MEMORY_KINDS.get(k, k) for row in rows for k in row.memory_kinds()})
                                            or ["not recorded"]) + ".",
              "", "### Backbones and wrapped networks (as built)", ""]
    for row in rows:
        for line in row.backbone_lines():
            lines.append(f"- {row.model}: {line}")
    differences = protocol_differences(rows)
    lines += ["", "### Protocol check", "",
              "All finished runs share the same dataset, split, scaler, null value, metrics and epoch budget."
              if not differences else "**The runs do not share one protocol:**"]
    lines += [f"- {d}" for d in differences]
    return "\n".join(lines) + "\n"


def thread_note(settings: dict, rows: List[ModelRow]) -> str:
    """Torch's CPU threads per run as each run recorded them; runs that did not (older runs) are named."""
    recorded = {row.model: row.cpu_threads() for row in rows if row.finished}
    counts = {n for threads in recorded.values() if threads for n in threads}
    unrecorded = sorted(m for m, threads in recorded.items() if threads is None)
    if len(counts) == 1:
        note = f"{counts.pop()} torch CPU thread(s) per run"
    elif counts:
        note = "torch CPU threads per run: " + "; ".join(
            f"{m} {'/'.join(map(str, t))}" for m, t in recorded.items() if t)
    else:
        note = "torch CPU threads not recorded by the runs"
    if unrecorded:
        note += (f" ({', '.join(unrecorded)}: not recorded by the run; the latest `leaderboard run` call had "
                 f"{settings.get('software', {}).get('cpu_threads', '?')})" if counts else
                 f" (the latest `leaderboard run` call had {settings.get('software', {}).get('cpu_threads', '?')})")
    return note


def csv_rows(rows: List[ModelRow]) -> List[dict]:
    table = []
    for row in rows:
        entry = {"rank": row.rank or "", "model": row.model, "seeds_finished": len(row.finished),
                 "status": row.states().replace(", ", ";")}
        for group in ["overall"] + [f"horizon_{h}" for h in HORIZONS]:
            for m in METRICS:
                key = f"{m}{'' if group == 'overall' else '_h' + group.split('_')[1]}"
                entry[key] = "" if row.mean(group, m) is None else round(row.mean(group, m), 6)
                entry[f"{key}_std"] = "" if row.std(group, m) is None else round(row.std(group, m), 6)
        val_mean, val_std = mean_std(row.best_val())
        entry.update(trainable_params=row.info_mean("trainable_params") or "",
                     total_params=row.info_mean("total_params") or "", epochs_run=row.epochs_run(),
                     stopped_by=row.stop_reasons(),
                     best_val_MAE="" if val_mean is None else round(val_mean, 6),
                     best_val_MAE_std="" if val_std is None else round(val_std, 6),
                     train_seconds_per_epoch=row.seconds_per_epoch() or "",
                     inference_ms_per_batch=row.info_mean("inference_ms_per_batch") or "",
                     peak_memory_mb=row.peak_memory() or "",
                     error="; ".join(sorted({r.error for r in row.runs if r.error})))
        table.append(entry)
    return table


def figures(rows: List[ModelRow], dataset: str, folder: Path) -> List[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = [r for r in rows if r.finished]
    # one colour and marker per model, the same in both figures (the default cycle repeats after 10)
    colour = {row.model: plt.get_cmap("tab20")(2 * i % 20 + i // 10) for i, row in enumerate(done)}
    marker = {row.model: "osD^vP*Xhp<>"[i % 12] for i, row in enumerate(done)}
    paths = []
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for row in done:
        ax.errorbar(HORIZONS, [row.mean(f"horizon_{h}", "MAE") for h in HORIZONS],
                    yerr=[row.std(f"horizon_{h}", "MAE") or 0 for h in HORIZONS], marker=marker[row.model],
                    color=colour[row.model], capsize=3, label=row.model,
                    linewidth=2.5 if row.model == "STVFM" else 1.2)
    ax.set(xlabel="horizon (steps ahead)", ylabel="test MAE", title=f"{dataset}: test MAE per horizon", xticks=HORIZONS)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    paths.append(folder / "horizon_mae.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for row in done:
        seconds = row.train_seconds()
        if seconds:
            ax.scatter(seconds, row.mean("overall", "MAE"), s=60 if row.model == "STVFM" else 30,
                       color=colour[row.model], marker=marker[row.model])
            ax.annotate(row.model, (seconds, row.mean("overall", "MAE")), fontsize=8, xytext=(4, 3),
                        textcoords="offset points")
    ax.set_xscale("log")
    ax.set(xlabel="training time (s, log scale)", ylabel="test MAE", title=f"{dataset}: accuracy vs training time")
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    paths.append(folder / "accuracy_vs_time.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)
    return paths


# ---- per-run summaries: what the report is built from -------------------------------------------------
SUMMARIES, SETTINGS = "runs", "settings.json"
#: run_info.json entries a summary keeps
INFO_KEYS = ("epochs_run", "seconds_per_epoch", "trainable_params", "total_params", "batch_size",
             "inference_ms_per_batch", "peak_memory_mb", "cpu_threads", "stop_reason", "converged", "max_minutes",
             "build_report", "seed", "best_metrics", "mape_note", "nonfinite_predictions")
_PATH = re.compile(r"(?<![\w.])(?:/[^\s/:,;()'\"|]+)+/([^\s/:,;()'\"|]+)")


def without_paths(value):
    """`value` with every absolute file-system path inside its strings reduced to the file name."""
    if isinstance(value, str):
        return _PATH.sub(r"\1", value)
    if isinstance(value, list):
        return [without_paths(v) for v in value]
    if isinstance(value, dict):
        return {k: without_paths(v) for k, v in value.items()}
    return value


def _summary(run: SeedRun, with_forecast: bool) -> dict:
    cfg = {k: run.cfg[k] for k in PROTOCOL_KEYS if k in run.cfg}
    if run.cfg:  # a run folder's full config, or a summary's part of it (which keeps its hash)
        cfg["config_sha256"] = run.cfg.get("config_sha256") or hashlib.sha256(
            json.dumps(run.cfg, sort_keys=True).encode()).hexdigest()
    summary = {"seed": run.seed, "state": run.state, "error": run.error, "metrics": run.metrics,
               "info": {k: run.info[k] for k in INFO_KEYS if k in run.info}, "cfg": cfg}
    if with_forecast and run.forecast:
        summary["forecast"] = run.forecast
    return without_paths(summary)


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


def _dump(path: Path, value) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2, sort_keys=True, allow_nan=True) + "\n", encoding="utf-8")


def export_summaries(settings: dict, rows: List[ModelRow], report_dir: Path) -> None:
    """Write `settings.json` and one summary per run into `report_dir` (replacing earlier ones)."""
    folder = Path(report_dir) / SUMMARIES
    for old in folder.glob("*/seed-*.json") if folder.is_dir() else []:
        old.unlink()
    kept = dict(settings, dataset_meta=without_paths(settings.get("dataset_meta") or dataset_meta(
        settings["budget"]["dataset"])))
    _dump(Path(report_dir) / SETTINGS, without_paths(kept))
    for position, row in enumerate(rows):
        for run in row.runs:
            _dump(folder / model_folder(row.model) / f"seed-{run.seed}.json",
                  {**_summary(run, with_forecast=run is row.runs[0]), "model": row.model, "order": position})


def read_summaries(report_dir: Path) -> tuple[dict, List[ModelRow]]:
    """The settings and rows (in their saved order) of a report folder's summaries."""
    report_dir = Path(report_dir)
    settings = read_json(report_dir / SETTINGS)
    if not settings:
        raise UserError(f"{report_dir} holds no {SETTINGS} of a leaderboard: run `python -m stvfm_plugin.leaderboard "
                        "run` first, or point --report-dir at a folder with the committed summaries.")
    found: Dict[str, List[tuple]] = {}
    for path in sorted((report_dir / SUMMARIES).glob("*/seed-*.json")):
        data = read_json(path)
        found.setdefault(data.get("model", path.parent.name), []).append(
            (data.get("order", 0), SeedRun(data["seed"], data["state"], data.get("metrics", {}), data.get("info", {}),
                                           data.get("cfg", {}), data.get("error", ""), data.get("forecast", {}))))
    return settings, [ModelRow(model, sorted((r for _, r in runs), key=lambda r: r.seed))
                      for model, runs in sorted(found.items(), key=lambda item: min(o for o, _ in item[1]))]


def collect_summaries(report_dir: Path) -> tuple[dict, List[ModelRow]]:
    """The settings and ranked rows of a report folder's summaries (the input of every report)."""
    settings, rows = read_summaries(report_dir)
    _rank(rows)
    return settings, sorted(rows, key=lambda r: (r.rank is None, r.rank or 0))


#: budget entries on which two leaderboard calls must agree for their runs to share one report (the time cap may grow:
#: a run that converged under a smaller cap converged under any larger one)
SHARED_BUDGET = ("dataset", "kind", "epochs", "patience")


def _cap(minutes: Optional[float]) -> float:
    return math.inf if minutes is None else float(minutes)


def _check_same_leaderboard(settings: dict, earlier: dict, report_dir: Path) -> None:
    """Refuse to mix runs of another budget, of a smaller time cap or of another preparation of the data into one
    report."""
    new_budget, old_budget = settings["budget"], earlier["budget"]
    differ = [f"{k} {old_budget.get(k)!r} there, {new_budget.get(k)!r} here" for k in SHARED_BUDGET
              if old_budget.get(k) != new_budget.get(k)]
    if _cap(new_budget.get("max_minutes")) < _cap(old_budget.get("max_minutes")):
        differ.append(f"a time cap of {old_budget.get('max_minutes')!r} minutes there, a smaller one "
                      f"({new_budget.get('max_minutes')!r}) here: runs that converged there might be capped here")
    if earlier.get("dataset_meta") and without_paths(settings.get("dataset_meta")) != earlier["dataset_meta"]:
        differ.append("the dataset was prepared differently (its meta.json)")
    if differ:
        raise UserError(f"{report_dir} holds runs of another leaderboard ({'; '.join(differ)}): give this one its own "
                        "--report-dir, or move that folder away to replace its report.")


def ended_summaries(report_dir: Path, settings: dict) -> Dict[tuple, str]:
    """(model, seed) -> summary file, for each run that the summaries in `report_dir` hold as ended (none when it
    holds no report); `settings` (budget and dataset_meta) must be those of the report's leaderboard."""
    if not (Path(report_dir) / SETTINGS).is_file():
        return {}
    earlier, rows = read_summaries(report_dir)
    _check_same_leaderboard(settings, earlier, report_dir)
    reopened = reopened_by_larger_cap(rows, settings["budget"].get("max_minutes"), earlier["budget"].get("max_minutes"))
    return {(row.model, run.seed): str(Path(report_dir) / SUMMARIES / model_folder(row.model) / f"seed-{run.seed}.json")
            for row in rows for run in row.runs if run.ended and (row.model, run.seed) not in reopened}


def reopened_by_larger_cap(rows: List[ModelRow], max_minutes: Optional[float], recorded_cap: Optional[float]) -> set:
    """(model, seed) of the ended runs that a time cap of `max_minutes` trains again: those a smaller cap stopped, and
    the seeds skipped after them (`--skip-seeds-after-cap`). Converged runs stay: a larger cap would not change them.
    A run's own cap comes from its summary, else `recorded_cap` (the report's)."""
    reopened = set()
    for row in rows:
        smaller = [r for r in row.capped if _cap(r.info.get("max_minutes", recorded_cap)) < _cap(max_minutes)]
        if smaller:
            reopened |= {(row.model, r.seed) for r in row.runs if r in smaller or r.state == SKIPPED_STATE}
    return reopened


def converged_under_smaller_caps(rows: List[ModelRow], max_minutes: Optional[float]) -> List[str]:
    """A protocol line naming the converged runs that trained under a smaller time cap than the budget's (kept)."""
    found = {}
    for row in rows:
        for run in row.finished:
            cap = run.info.get("max_minutes")
            if cap is not None and _cap(cap) < _cap(max_minutes):
                found.setdefault(f"{cap:g}", []).append(f"{row.model} seed {run.seed}")
    return [f"- Converged under an earlier, smaller time cap of {cap} minutes (kept: a larger cap does not change a run "
            f"that early stopping or its epochs ended): {', '.join(runs)}" for cap, runs in sorted(found.items())]


def keep_earlier_runs(settings: dict, rows: List[ModelRow], report_dir: Path,
                      note: Callable[[str], None]) -> tuple[dict, List[ModelRow]]:
    """The leaderboard folder's runs merged with the ended runs already summarised in `report_dir`.

    Run folders are working state (not committed, gone in a fresh checkout); the summaries are the record. So a run
    the report holds as ended (finished, or stopped by the cap) stays in it unless the leaderboard folder has that
    run ended too (then the newer result wins); every other run of the folder replaces its summary. Rows keep the
    report's order, new models follow. Runs of another budget or another preparation of the data are refused.
    """
    earlier, old_rows = read_summaries(report_dir)
    _check_same_leaderboard(settings, earlier, report_dir)
    new_budget, old_budget = settings["budget"], earlier["budget"]
    new_rows = {row.model: row for row in rows}
    new_runs = {id(run) for row in rows for run in row.runs}
    merged = []
    for model in [r.model for r in old_rows] + [m for m in new_rows if m not in {r.model for r in old_rows}]:
        runs = {r.seed: r for row in old_rows if row.model == model for r in row.runs}
        for run in new_rows[model].runs if model in new_rows else []:
            if not (run.seed in runs and runs[run.seed].ended and not run.ended):
                runs[run.seed] = run
        # seed 0 is the "not started" placeholder of a row without runs
        merged.append(ModelRow(model, [r for _, r in sorted(runs.items()) if r.seed or len(runs) == 1]))
    kept = sum(1 for row in merged for run in row.runs if run.ended and id(run) not in new_runs)
    if kept:
        note(f"note: {kept} ended run{'s are' if kept > 1 else ' is'} kept from the summaries in {report_dir} (no "
             "ended run of this leaderboard folder replaces them)")
    calls = [c for c in [{"device": earlier.get("device"), "software": earlier.get("software")},
                         *earlier.get("earlier_calls", [])]
             if kept and c != {"device": settings.get("device"), "software": settings.get("software")}]
    budget = {**old_budget, **new_budget, "models": [row.model for row in merged],
              "seeds": sorted(set(old_budget.get("seeds", [])) | set(new_budget.get("seeds", []))),
              "overrides": {**old_budget.get("overrides", {}), **new_budget.get("overrides", {})}}
    distinct = [c for i, c in enumerate(calls) if c not in calls[:i]]
    settings = dict(settings, budget=budget, **({"earlier_calls": distinct} if distinct else {}))
    return settings, merged


def _rank(rows: List[ModelRow]) -> None:
    """Rank the models (not their ablation rows) with a converged run by mean test MAE."""
    ranked = sorted((r for r in rows if r.finished and not r.is_variant), key=lambda r: r.mean("overall", "MAE"))
    for i, row in enumerate(ranked, 1):
        row.rank = i


def forecast_figure(rows: List[ModelRow], dataset: str, folder: Path) -> List[Path]:
    """`forecasts.png`: truth against ST-VFM and the best-ranked other model, a few sensors at a rush hour."""
    stvfm = next((r for r in rows if r.model == "STVFM" and r.runs and r.runs[0].forecast), None)
    best = next((r for r in sorted(rows, key=lambda r: r.rank or 1e9)
                 if r.rank and r.model != "STVFM" and r.runs and r.runs[0].forecast), None)
    shown = [r for r in (stvfm, best) if r is not None]
    if not shown:
        return []
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sample = shown[0].runs[0].forecast
    fig, axes = plt.subplots(len(sample["sensors"]), 1, figsize=(8, 2.4 * len(sample["sensors"])), sharex=True,
                             squeeze=False)
    x = list(range(len(sample["times"])))
    for k, (ax, sensor) in enumerate(zip(axes[:, 0], sample["sensors"])):
        ax.plot(x, sample["truth"][k], color="black", linewidth=1.8, label="truth")
        for row, colour in zip(shown, ("tab:blue", "tab:orange")):
            forecast = row.runs[0].forecast
            if sensor in forecast["sensors"]:
                ax.plot(x, forecast["prediction"][forecast["sensors"].index(sensor)], color=colour, linewidth=1.2,
                        label=f"{row.model} (seed {row.runs[0].seed})")
        ax.set_ylabel(f"sensor {sensor}")
        ax.grid(alpha=0.3)
    ticks = x[::max(1, len(x) // 6)]
    axes[-1, 0].set_xticks(ticks, [str(sample["times"][i])[-5:] if isinstance(sample["times"][i], str)
                                   else str(sample["times"][i]) for i in ticks])
    axes[0, 0].legend(fontsize=8, ncol=3, loc="upper left")
    axes[0, 0].set_title(f"{dataset}: test forecasts {sample['horizon']} steps ahead"
                         + (f", {str(sample['times'][0])[:10]}" if isinstance(sample["times"][0], str) else ""))
    fig.tight_layout()
    path = folder / "forecasts.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]


COSTS_BEGIN = "<!-- cost table: generated by python -m stvfm_plugin.leaderboard costs -->"
COSTS_END = "<!-- end of cost table -->"


def cost_table(report_dirs: List[Path]) -> str:
    """What each model's runs cost, per dataset, from the summaries of committed reports: minutes of training per
    run (mean over its ended runs, converged or stopped by the cap; not over unfinished ones), epochs, seconds per
    epoch, and core-hours of those runs."""
    reports = [(collect_summaries(d)) for d in report_dirs]
    datasets = [settings["budget"]["dataset"] for settings, _ in reports]
    models = list(dict.fromkeys(row.model for _, rows in reports for row in rows))
    lines = [COSTS_BEGIN, "", "Training minutes per run (mean over its seeds) / epochs run / seconds per epoch; "
             "one thread per run, as the reports say. Training only: the validation pass after each epoch and the "
             "final test are not counted (the time cap counts the same way), so wall time is longer.", "",
             "| Model | " + " | ".join(datasets) + " |", "|---|" + "---:|" * len(datasets)]
    totals = [0.0] * len(datasets)
    for model in models:
        cells = []
        for k, (_, rows) in enumerate(reports):
            row = next((r for r in rows if r.model == model), None)
            trained = [r for r in (row.finished + row.capped if row else []) if r.info.get("seconds_per_epoch")]
            if not trained:
                cells.append("—")
                continue
            per_run = [sum(r.info["seconds_per_epoch"]) for r in trained]
            epochs = [len(r.info["seconds_per_epoch"]) for r in trained]
            totals[k] += sum(per_run)
            cells.append(f"{sum(per_run) / len(per_run) / 60:.1f} / {'/'.join(map(str, epochs))} / "
                         f"{sum(per_run) / sum(epochs):.1f}" + ("" if row.finished else " (not converged)"))
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    lines.append("| **all runs (core-hours of training)** | " + " | ".join(f"**{t / 3600:.2f}**" for t in totals) + " |")
    return "\n".join(lines + ["", COSTS_END])


def replace_generated(path: Path, table: str) -> None:
    """Put `table` between the cost-table markers of `path` (a `UserError` when it has none)."""
    if not Path(path).is_file():
        raise UserError(f"{path}: no such file to write the cost table into.")
    text = Path(path).read_text(encoding="utf-8")
    if COSTS_BEGIN not in text or COSTS_END not in text:
        raise UserError(f"{path} has no cost-table markers; add the two lines {COSTS_BEGIN} and {COSTS_END} where the "
                        "table belongs.")
    start, end = text.index(COSTS_BEGIN), text.index(COSTS_END) + len(COSTS_END)
    Path(path).write_text(text[:start] + table + text[end:], encoding="utf-8")


def deleted_runs(rows: List[ModelRow]) -> List[str]:
    """One warning per run that was started but whose folder is gone."""
    return [f"{row.model} seed {r.seed}: {r.error}" for row in rows for r in row.runs if r.state == "deleted"]


def write_report(out: Optional[Path], report_dir: Path, warn: Callable[[str], None] = lambda s: None) -> List[Path]:
    """Write the report into `report_dir`; returns the files written.

    With the leaderboard folder `out` (when it exists), the summaries are first exported from its run folders,
    keeping the ended runs `report_dir` already summarises (see `keep_earlier_runs`; a `warn` line says how many)
    and showing runs whose folder was deleted as such (a `warn` line each); without it, the report is rebuilt from
    the summaries already in `report_dir`.
    """
    if out is not None and (Path(out) / "leaderboard.json").is_file():
        settings, rows = collect(Path(out))
        if (Path(report_dir) / SETTINGS).is_file():
            settings, rows = keep_earlier_runs(settings, rows, Path(report_dir), warn)
        for line in deleted_runs(rows):
            warn(f"warning: {line}")
        export_summaries(settings, rows, Path(report_dir))
    settings, rows = collect_summaries(Path(report_dir))
    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    paths = [report_dir / "leaderboard.md", report_dir / "leaderboard.csv"]
    paths[0].write_text(markdown(settings, rows), encoding="utf-8")
    table = csv_rows(rows)
    with open(paths[1], "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(table[0]))
        writer.writeheader()
        writer.writerows(table)
    return paths + figures(rows, settings["budget"]["dataset"], report_dir) + \
        forecast_figure(rows, settings["budget"]["dataset"], report_dir)


def tune_table(out: Path, report_dir: Optional[Path] = None, warn: Callable[[str], None] = lambda s: None) -> str:
    """The `tune` table of a folder of validation-only runs (see `tune_markdown`). With `report_dir`, the runs are
    first merged into its summaries (as `write_report` does), so the table covers every ended run of earlier calls."""
    settings, rows = collect(Path(out))
    if report_dir is not None:
        if (Path(report_dir) / SETTINGS).is_file():
            settings, rows = keep_earlier_runs(settings, rows, Path(report_dir), warn)
        export_summaries(settings, rows, Path(report_dir))
        settings, rows = read_summaries(Path(report_dir))
    return tune_markdown(settings["budget"], rows)


def tune_markdown(budget: dict, rows: List[ModelRow]) -> str:
    """Each candidate's best validation MAE (mean ± std over seeds), ranked, and the choice. These runs were never
    tested, so the choice cannot have looked at the test split. A choice needs two candidates with results, and it
    only says something about the committed config when that config is one of them."""
    best_val = {row.model: row.best_val() for row in rows}
    scored = sorted((mean_std(best_val[r.model]) + (r,) for r in rows if best_val[r.model]), key=lambda item: item[0])
    lines = [f"# Tuning on validation: {budget['dataset']}", "",
             "Best validation MAE of each candidate (mean ± sample std over seeds "
             f"{', '.join(map(str, budget['seeds']))}); generated by `python -m stvfm_plugin.leaderboard tune`. These "
             "runs were trained with `--no-test`: the test split was never evaluated, so the choice below cannot "
             "have seen it. " + _budget_line(budget).removeprefix("- ") + ".", "",
             "| Rank | Candidate | Seeds | Best val MAE | Epochs run | Stopped by | Train s/epoch | Status |",
             "|---:|---|---:|---:|---:|---|---:|---|"]
    for rank, (mean, std, row) in enumerate(scored, 1):
        lines.append(f"| {rank} | {row.model} | {len(best_val[row.model])} | {_fmt(mean, std, digits=4)} | "
                     f"{row.epochs_run()} | {row.stop_reasons()} | {_fmt(row.seconds_per_epoch(), digits=1)} | "
                     f"{row.states()} |")
    for row in (r for r in rows if not best_val[r.model]):
        errors = "; ".join(sorted({r.error for r in row.runs if r.error}))
        lines.append(f"| — | {row.model} | 0 | — | — | — | — | {row.states()}{': ' + errors if errors else ''} |")
    bases = sorted({row.model.split(":")[0] for row in rows} - {row.model for row in rows})
    if bases:
        lines += ["", f"The committed config of {', '.join(bases)} is not a candidate here, so this table cannot say "
                  "whether a change beats it: name the bare model as a candidate too (`--models "
                  f"{bases[0]} {bases[0]}:...`)."]
    if len(scored) == 1:
        lines += ["", f"Nothing to choose between: only {scored[0][2].model} has a validation result."]
    elif scored:
        best_mean, best_std, best = scored[0]
        close = [row.model for mean, std, row in scored[1:] if mean - best_mean < max(best_std or 0.0, std or 0.0)]
        lines += ["", f"Chosen on validation: **{best.model}**" + (
            f"; within the larger std of the best: {', '.join(close)} (not settled by these seeds)." if close else "."),
            "Then test it once, under the leaderboard's budget and seeds (as a row, or made the model's config): "
            f"`python -m stvfm_plugin.leaderboard run --dataset {budget['dataset']} --models {best.model} ...`."]
    return "\n".join(lines) + "\n"


def close_ranks(rows: List[ModelRow]) -> List[str]:
    """A note for each pair of adjacent ranks whose mean test MAEs differ by less than the larger of their stds."""
    ranked = sorted((r for r in rows if r.rank), key=lambda r: r.rank)
    notes = []
    for a, b in zip(ranked, ranked[1:]):
        gap = b.mean("overall", "MAE") - a.mean("overall", "MAE")
        spread = max(a.std("overall", "MAE") or 0.0, b.std("overall", "MAE") or 0.0)
        if gap < spread:
            notes.append(f"- Ranks {a.rank} and {b.rank} ({a.model}, {b.model}) are closer than their std: MAE gap "
                         f"{gap:.3f} < std {spread:.3f}; this order is not settled by these seeds.")
    return ["", *notes] if notes else []


def reference_flags(rows: List[ModelRow]) -> List[str]:
    """Which ranked models do not beat the best naive reference (their mean test MAE is not below its)."""
    references = [r for r in rows if r.is_reference and r.finished]
    if not references:
        return []
    best = min(references, key=lambda r: r.mean("overall", "MAE"))
    floor = best.mean("overall", "MAE")
    behind = [r for r in rows if r.rank and not r.is_reference and r.mean("overall", "MAE") >= floor]
    lines = ["", f"Naive references (trained on nothing, scored on the same test windows and masks): "
             + ", ".join(f"{r.model} {r.mean('overall', 'MAE'):.3f} ({REFERENCES[r.model]})" for r in references)
             + f". The best is {best.model}."]
    lines.append("**Not better than the best naive reference: " + ", ".join(
        f"{r.model} ({r.mean('overall', 'MAE'):.3f})" for r in behind) + ".**" if behind
        else f"Every ranked model beats {best.model}.")
    return lines


def capped_runs(rows: List[ModelRow]) -> List[str]:
    """The runs the time cap stopped, with what they reached: not converged, so not in the means and ranks."""
    found = [(row, run) for row in rows for run in row.capped]
    if not found:
        return []
    lines = ["", "## Runs stopped by the time cap (not converged: not in the means and ranks)", "",
             "What they reached when the cap stopped them; a converged run of these models may well do better.", "",
             "| Model | Seed | Epochs run | Train s/epoch | Test MAE at the cap | Test RMSE at the cap |",
             "|---|---:|---:|---:|---:|---:|"]
    for row, run in found:
        seconds = run.info.get("seconds_per_epoch") or []
        overall = run.metrics.get("overall", {})
        lines.append(f"| {row.model} | {run.seed} | {run.info.get('epochs_run', '?')} | "
                     f"{_fmt(sum(seconds) / len(seconds) if seconds else None, digits=1)} | "
                     f"{_fmt(overall.get('MAE'))} | {_fmt(overall.get('RMSE'))} |")
    skipped = [(row.model, [run.seed for run in row.runs if run.state == SKIPPED_STATE]) for row in rows]
    skipped = [f"{model} seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}"
               for model, seeds in skipped if seeds]
    if skipped:
        lines += ["", "Not trained (`--skip-seeds-after-cap`: once a seed of a model is stopped by the cap, its other "
                  "seeds are skipped, since each would cost the full cap and could not enter the means and ranks): "
                  + "; ".join(skipped) + "."]
    return lines


def seed_spread(row: ModelRow, other: ModelRow) -> Optional[float]:
    """The larger of two rows' test MAE stds, the bar a difference of their means must clear; None unless both
    have at least two finished seeds (no std, so undecided)."""
    if len(row.finished) < 2 or len(other.finished) < 2:
        return None
    return max(row.std("overall", "MAE"), other.std("overall", "MAE"))


def natural_key(text: str) -> List[object]:
    """Sort key that orders the numbers inside `text` by value: `vfm_layers=6` before `vfm_layers=12`."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def display_order(rows: List[ModelRow]) -> List[ModelRow]:
    """The full models in their given (rank) order, then the ablation rows ordered by `natural_key`."""
    return ([r for r in rows if not r.is_variant]
            + sorted((r for r in rows if r.is_variant), key=lambda r: natural_key(r.model)))


def ablations(rows: List[ModelRow]) -> List[str]:
    """The ablation rows (`MODEL:key=value`) against their full model: test metrics, the change, and whether the
    change is larger than the seeds' spread (the larger of the two stds)."""
    by_name = {r.model: r for r in rows}
    variants = [r for r in rows if r.is_variant and split_variant(r.model)[0] in by_name]
    if not variants:
        return []
    lines = ["", "## Ablations", "",
             "Each row is its model with the overrides after `:`, trained under the same budget and seeds. "
             "\"Beyond the std\": the change in mean test MAE is larger than the larger of the two rows' stds. "
             "Best val MAE: the validation MAE of the checkpoint that was tested (the full models' own rows close "
             "the table), for reading whether validation would have picked the same variant.", "",
             "| Variant | Seeds | Test MAE | Test RMSE | Best val MAE | Epochs run | Stopped by "
             "| Change in MAE against the full model | Beyond the std | Status |",
             "|---|---:|---:|---:|---:|---:|---|---:|---|---|"]
    for row in display_order(variants):
        full = by_name[split_variant(row.model)[0]]
        mine, ref = row.mean("overall", "MAE"), full.mean("overall", "MAE")
        change = beyond = "—"
        if ref is None and full.capped:
            change = "— (full model capped)"
        elif mine is not None and ref is not None:
            change = f"{mine - ref:+.3f} ({100 * (mine - ref) / ref:+.1f} %)"
            spread = seed_spread(row, full)
            if spread is not None:
                beyond = "yes" if abs(mine - ref) > spread else "no"
        lines.append(_ablation_line(row, row.model, change, beyond))
    fulls = [by_name[m] for m in sorted({split_variant(r.model)[0] for r in variants})]
    lines += [_ablation_line(full, f"{full.model} (full model)", "—", "—") for full in fulls]
    capped = [full for full in fulls if not full.finished and full.capped]
    if capped:
        reached = [f"{full.model} {_fmt(run.metrics.get('overall', {}).get('MAE'))} (seed {run.seed}, "
                   f"{run.info.get('epochs_run', '?')} epochs)" for full in capped for run in full.capped]
        lines += ["", f"{', '.join(full.model for full in capped)}: the full model has no converged run (each of its "
                  "runs that ended training was stopped by the time cap), so no change is computed against it. What "
                  f"it reached at the cap, test MAE: {'; '.join(reached)} (see \"Runs stopped by the time cap\")."]
    return lines


def _ablation_line(row: ModelRow, label: str, change: str, beyond: str) -> str:
    """One line of the Ablations table."""
    return (f"| {label} | {len(row.finished)} | {_fmt(row.mean('overall', 'MAE'), row.std('overall', 'MAE'))} | "
            f"{_fmt(row.mean('overall', 'RMSE'), row.std('overall', 'RMSE'))} | {row.best_val_cell()} | "
            f"{row.epochs_run() or '—'} | {row.stop_reasons() or '—'} | {change} | {beyond} | {row.states()} |")


#: the project's targets for ST-VFM (issue 12): mean test MAE at most this times the best baseline's, and the
#: pretrained backbone better than each of these variants by more than the larger of the two stds
SUBJECT = "STVFM"
TARGET_RATIO = 0.97
BACKBONE_VARIANTS = (("a random backbone", "pretrained=False"), ("no backbone", "vfm_layers=0"))


def verdict(rows: List[ModelRow], seeds: List[int]) -> List[str]:
    """Whether ST-VFM reaches the project's targets on these rows, said plainly, with what is still missing."""
    by_name = {r.model: r for r in rows}
    subject = by_name.get(SUBJECT)
    if subject is None:
        return []
    mae, std = subject.mean("overall", "MAE"), subject.std("overall", "MAE")
    lines = ["", "## Does ST-VFM win, and does its frozen backbone help?", "",
             f"The project's targets: ST-VFM's mean test MAE at most {TARGET_RATIO}x the best baseline's; and the "
             "pretrained backbone beating both "
             + " and ".join(f"{label} (`{SUBJECT}:{key}`)" for label, key in BACKBONE_VARIANTS)
             + " by more than the larger of the two stds. Checked on the rows above as they stand:", ""]
    answers = []
    baselines = [r for r in rows if r.rank and r.model != SUBJECT and not r.is_reference]
    if mae is None or not baselines:
        answers.append(None)
        lines.append(f"- ST-VFM against the best baseline: undecided (no finished run of "
                     f"{'ST-VFM' if mae is None else 'any baseline'}).")
    else:
        best = min(baselines, key=lambda r: r.mean("overall", "MAE"))
        ref = best.mean("overall", "MAE")
        answers.append(mae / ref <= TARGET_RATIO)
        lines.append(f"- ST-VFM / best baseline ({best.model}): {mae:.3f} / {ref:.3f} = {mae / ref:.3f}: **target "
                     f"(at most {TARGET_RATIO}) {'reached' if answers[-1] else 'not reached'}**.")
    for label, key in BACKBONE_VARIANTS:
        variant = by_name.get(f"{SUBJECT}:{key}")
        other = variant.mean("overall", "MAE") if variant else None
        head = f"- Pretrained backbone against {label} (`{SUBJECT}:{key}`)"
        if mae is None or other is None:
            answers.append(None)
            missing = "ST-VFM" if mae is None else "the variant" if variant else "the variant: not in this leaderboard"
            lines.append(f"{head}: undecided (no finished run of {missing}).")
            continue
        gap = other - mae  # > 0: the pretrained backbone is better
        spread = seed_spread(subject, variant)
        figures = f"{_fmt(mae, std)} against {_fmt(other, variant.std('overall', 'MAE'))}"
        if spread is None:
            answers.append(None)
            lines.append(f"{head}: {figures}: undecided (fewer than two seeds on one side, no std).")
            continue
        answers.append(gap > spread)
        lines.append(f"{head}: {figures}: pretrained {'better' if gap > 0 else 'worse'} by {abs(gap):.3f}, "
                     f"{'more' if abs(gap) > spread else 'less'} than the std {spread:.3f}: **"
                     f"{'beats it' if answers[-1] else 'does not beat it'}**.")
    overall = "not reached" if False in answers else "reached" if all(answers) else "undecided"
    lines += ["", f"**Targets: {overall}.**"]
    short = [f"{r.model} ({r.states() or 'not started'})" for r in rows
             if (not r.is_variant or r.model in {f"{SUBJECT}:{k}" for _, k in BACKBONE_VARIANTS})
             and sum(run.ended for run in r.runs) < len(seeds)]
    capped = [r.model for r in rows if not r.is_variant and r.capped and not r.finished]
    if short:
        lines += ["", "Interim: these rows do not have every seed yet, so the best baseline and the answers above "
                  "may change: " + ", ".join(short) + "."]
    if capped:
        lines += ["", "Not compared (no converged run: each of its runs that ended training was stopped by the time "
                  "cap): " + ", ".join(capped) + "."]
    return lines


def _budget_line(budget: dict) -> str:
    if budget.get("kind", "convergence") == "equal epochs" or not budget.get("patience"):
        return (f"- Budget: **equal epochs**, every model trains exactly {budget['epochs']} epochs (not run to "
                "convergence; the best-validation checkpoint is tested)")
    cap = budget.get("max_minutes")
    return (f"- Budget: **convergence**, early stopping on validation MAE with patience {budget['patience']}, at most "
            f"{budget['epochs']} epochs" + (f", at most {cap:g} minutes of training per run (a run stopped by this cap "
                                            "is marked not converged and left out of means and ranks)" if cap else ""))


def _is_marker(null_val) -> bool:
    """A missing-value marker (a number), not BasicTS's NaN for 'none'."""
    return isinstance(null_val, (int, float)) and null_val == null_val
