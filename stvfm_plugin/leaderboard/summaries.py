"""The per-run summaries a report is built from: written beside the report (`runs/<Model>/seed-<k>.json`, file-system
paths reduced to file names), read back, checked against the budget of a later call and merged with its runs."""
from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path
from typing import Callable, Dict, List, Optional

from ..errors import UserError
from .rows import PROTOCOL_KEYS, SETTINGS_KEYS, ModelRow, SeedRun, _rank
from ..files import read_json
from ..records import Outcome
from .runs import dataset_meta, model_folder

# ---- per-run summaries: what the report is built from -------------------------------------------------
SUMMARIES, SETTINGS = "runs", "settings.json"
#: settings.json's record of the renames of `relabel` (kept by every later call)
RELABELLED = "relabelled"
#: run_info.json entries a summary keeps
INFO_KEYS = ("epochs_run", "seconds_per_epoch", "trainable_params", "total_params", "batch_size",
             "inference_ms_per_batch", "peak_memory_mb", "cpu_threads", "stop_reason", "converged", "max_minutes",
             "build_report", "seed", "best_metrics", "mape_note", "nonfinite_predictions", "backbone",
             "backbone_report", "train_fraction", "train_windows")
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
    cfg.update({k: run.cfg[k] for k in SETTINGS_KEYS if k in run.cfg})
    if run.cfg:  # a run folder's full config, or a summary's part of it (which keeps its hash)
        cfg["config_sha256"] = run.cfg.get("config_sha256") or hashlib.sha256(
            json.dumps(run.cfg, sort_keys=True).encode()).hexdigest()
    summary = {"seed": run.seed, "state": run.state, "error": run.error, "metrics": run.metrics,
               "info": {k: run.info[k] for k in INFO_KEYS if k in run.info}, "cfg": cfg}
    if with_forecast and run.forecast:
        summary["forecast"] = run.forecast
    return without_paths(summary)


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
        check_summary(path, data)
        found.setdefault(data.get("model", path.parent.name), []).append(
            (data.get("order", 0), SeedRun(data["seed"], Outcome.of(data["state"]), data.get("metrics", {}), data.get("info", {}),
                                           data.get("cfg", {}), data.get("error", ""), data.get("forecast", {}))))
    return settings, [ModelRow(model, sorted((r for _, r in runs), key=lambda r: r.seed))
                      for model, runs in sorted(found.items(), key=lambda item: min(o for o, _ in item[1]))]


def check_summary(path: Path, data) -> None:
    """Refuse a summary that no run could have written (edited by hand, or damaged): it must say its seed and state,
    and a scored run's metrics must be finite numbers of 0 or more, so nothing corrupted can rank."""
    def bad(what: str) -> UserError:
        return UserError(f"{path}: {what}. A run never writes that: the summary was edited or damaged. Restore it (e.g. "
                         "git checkout), or delete it to train that run again.")

    if not isinstance(data, dict):
        raise bad("it holds no JSON object")
    seed = data.get("seed")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise bad(f"its seed is {seed!r}, not a whole number of 0 or more")
    if not isinstance(data.get("state"), str):
        raise bad(f"its state is {data.get('state')!r}, not a word")
    try:
        state = Outcome.of(data["state"])
    except UserError as e:
        raise bad(str(e).split(";")[0]) from None
    for entry, kind in (("metrics", dict), ("info", dict), ("cfg", dict), ("forecast", dict), ("error", str)):
        if data.get(entry) is not None and not isinstance(data[entry], kind):
            raise bad(f"its {entry} is {type(data[entry]).__name__}, not {'an object' if kind is dict else 'text'}")
    if state not in (Outcome.FINISHED, Outcome.NOT_CONVERGED):
        return
    info = data.get("info") or {}
    if not isinstance(info.get("best_metrics", {}), dict):
        raise bad(f"its best validation metrics are {info['best_metrics']!r}, not an object of metrics")
    metrics = {**(data.get("metrics") or {}), "best validation": info.get("best_metrics", {})}
    for group, values in metrics.items():
        if not isinstance(values, dict):
            raise bad(f"its metrics {group} is {values!r}, not an object of metrics")
        for name, value in values.items():
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if number and name == "MAPE" and math.isnan(value):
                continue  # no target far enough from zero to divide by: MAPE has no value (never ranked on)
            if not number or not math.isfinite(value) or value < 0:
                raise bad(f"its metrics {group} {name} is {value!r}; a {state.value} run's metrics are finite numbers "
                          "of 0 or more")


def collect_summaries(report_dir: Path) -> tuple[dict, List[ModelRow]]:
    """The settings and ranked rows of a report folder's summaries (the input of every report)."""
    settings, rows = read_summaries(report_dir)
    _rank(rows)
    return settings, sorted(rows, key=lambda r: (r.rank is None, r.rank or 0))


#: budget entries on which two leaderboard calls must agree for their runs to share one report (the time cap may grow:
#: a run that converged under a smaller cap converged under any larger one)
SHARED_BUDGET = ("dataset", "kind", "epochs", "patience", "history")
#: what a budget recorded before an entry existed meant by it
BUDGET_DEFAULTS = {"history": "recent"}


def _cap(minutes: Optional[float]) -> float:
    return math.inf if minutes is None else float(minutes)


def meta_changes(earlier: dict, meta: dict) -> List[str]:
    """The entries of two datasets' meta.json that differ, among those both have: an entry that only one has is a
    newer or older `prepare` recording more or less about the same data (e.g. `node_ids`), not other data."""
    return sorted(k for k in earlier.keys() & meta.keys() if earlier[k] != meta[k])


def _check_same_leaderboard(settings: dict, earlier: dict, report_dir: Path) -> None:
    """Refuse to mix runs of another budget, of a smaller time cap or of another preparation of the data into one
    report."""
    new_budget, old_budget = settings["budget"], earlier["budget"]
    def entry(budget: dict, key: str):
        return budget.get(key, BUDGET_DEFAULTS.get(key))

    differ = [f"{k} {entry(old_budget, k)!r} there, {entry(new_budget, k)!r} here" for k in SHARED_BUDGET
              if entry(old_budget, k) != entry(new_budget, k)]
    if _cap(new_budget.get("max_minutes")) < _cap(old_budget.get("max_minutes")):
        differ.append(f"a time cap of {old_budget.get('max_minutes')!r} minutes there, a smaller one "
                      f"({new_budget.get('max_minutes')!r}) here: runs that converged there might be capped here")
    changed = meta_changes(earlier.get("dataset_meta") or {}, without_paths(settings.get("dataset_meta") or {}))
    if changed:
        differ.append(f"the dataset was prepared differently (its meta.json: {', '.join(changed)} differ)")
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
            reopened |= {(row.model, r.seed) for r in row.runs if r in smaller or r.state is Outcome.SKIPPED}
    return reopened


def converged_under_smaller_caps(rows: List[ModelRow], max_minutes: Optional[float]) -> List[str]:
    """A protocol line naming the converged runs that trained under a smaller time cap than the budget's (kept)."""
    found = {}
    for row in rows:
        for run in row.finished:
            cap = run.info.get("max_minutes")
            if cap is not None and _cap(cap) < _cap(max_minutes):
                found.setdefault(float(cap), []).append(f"{row.model} seed {run.seed}")
    return [f"- Converged under an earlier, smaller time cap of {cap:g} minutes (kept: a larger cap does not change a "
            f"run that early stopping or its epochs ended): {', '.join(runs)}" for cap, runs in sorted(found.items())]


def keep_earlier_runs(settings: dict, rows: List[ModelRow], report_dir: Path,
                      note: Callable[[str], None]) -> tuple[dict, List[ModelRow]]:
    """The leaderboard folder's runs merged with the ended runs already summarised in `report_dir`.

    Run folders are working state (not committed, gone in a fresh checkout); the summaries are the record. So a run
    the report holds as ended (finished, or stopped by the cap) stays in it unless the leaderboard folder has that
    run ended too (then the newer result wins), or the folder's larger time cap trains it again (a seed skipped after
    the smaller cap is then left out until the folder has its run); every other run of the folder replaces its
    summary. Rows keep the report's order, new models follow. Runs of another budget or another preparation of the data are refused.
    """
    earlier, old_rows = read_summaries(report_dir)
    _check_same_leaderboard(settings, earlier, report_dir)
    new_budget, old_budget = settings["budget"], earlier["budget"]
    new_rows = {row.model: row for row in rows}
    new_runs = {id(run) for row in rows for run in row.runs}
    # what this folder's larger cap trains again is no longer ended: its run here (training, or cut short) replaces it
    reopened = reopened_by_larger_cap(old_rows, new_budget.get("max_minutes"), old_budget.get("max_minutes"))
    merged = []
    for model in [r.model for r in old_rows] + [m for m in new_rows if m not in {r.model for r in old_rows}]:
        # a seed skipped after a smaller cap is this folder's to train (not skipped under its cap): left out until it is
        runs = {r.seed: r for row in old_rows if row.model == model for r in row.runs
                if not (r.state is Outcome.SKIPPED and (model, r.seed) in reopened)
                and (r.ended or not (model in new_rows and new_rows[model].left_out))}  # a left-out model: ended runs
        for run in new_rows[model].runs if model in new_rows else []:
            if not (run.seed in runs and runs[run.seed].ended and not run.ended and (model, run.seed) not in reopened):
                runs[run.seed] = run
        # seed 0 is the "not started" placeholder of a row without runs
        merged.append(ModelRow(model, [r for _, r in sorted(runs.items())
                                       if r.seed or len(runs) == 1 or r.state is Outcome.LEFT_OUT]))
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
    # the same data (checked above): the record keeps the meta.json it was made with
    settings = dict(settings, budget=budget, **({"dataset_meta": earlier["dataset_meta"]} if earlier.get("dataset_meta")
                                                else {}), **({"earlier_calls": distinct} if distinct else {}),
                    **({RELABELLED: earlier[RELABELLED]} if earlier.get(RELABELLED) else {}))
    return settings, merged
