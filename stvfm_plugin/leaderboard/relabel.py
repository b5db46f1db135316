"""Renaming a model's rows after its config file changed (`python -m stvfm_plugin.leaderboard relabel`).

A row's label is relative to its model's config file: `STVFM` is whatever `baselines_cfg/STVFM.py` says, and
`STVFM:vfm_layers=0` is that config with one change. When the file changes (a tuned setting becomes the default),
the runs a report already holds were trained under the old file: left as they are, the next `run` would keep them
(it skips ended runs) and present them as the new config. `relabel` renames them to what they are under the new
file: the old config is the new one with the settings `--as` names, so row `MODEL[:changes]` becomes
`MODEL:<--as settings, updated by changes>`, without the entries the new file already has. A row that was trained
under exactly the new settings becomes `MODEL` itself, and keeps its runs. Summaries, `settings.json` and (with
`--out`) the leaderboard folder's run folders and ledgers are renamed together.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Dict, List, Optional

from basicts.configs import BasicTSConfig

from ..config_tools import apply_overrides, checked_value, load_config, parse_override, parse_value
from ..errors import UserError
from ..files import atomic_write_text, read_json
from .runs import SKIPPED, STARTED, _top_level_items, model_folder, split_variant
from .summaries import RELABELLED, SETTINGS, SUMMARIES, _dump


def _entries(spec: str) -> Dict[str, str]:
    """`a=1,b=[2,3]` -> {"a": "1", "b": "[2,3]"} (the label's own key and value text)."""
    found = {}
    for item in filter(None, _top_level_items(spec)):
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise UserError(f"{spec!r}: write the settings as key=value[,key=value], e.g. "
                            "use_flow_branch=True,flow_loss_weight=0.5.")
        found[key.strip()] = value.strip()
    return found


def _value_at(cfg: BasicTSConfig, key: str) -> Any:
    head, _, rest = key.partition(".")
    if not rest:
        return cfg[head]
    if head == "model_config":
        return getattr(cfg.model_config, rest)
    return (cfg.get(head) or {}).get(rest)


def _full_key(key: str) -> str:
    """A label's key as a config entry (bare keys are model_config fields)."""
    return key if "." in key else f"model_config.{key}"


def _is_current(cfg: BasicTSConfig, key: str, value: str) -> bool:
    """`key=value` (label form) is what the config holds already."""
    current = _value_at(cfg, _full_key(key))
    return checked_value(_full_key(key), current, parse_value(value)) == current


def relabeled(label: str, model: str, old: Dict[str, str], cfg: BasicTSConfig) -> str:
    """The name under the new config `cfg` of row `label` (of `model`), trained when `model` was `cfg` with `old`."""
    base, _, spec = label.partition(":")
    if base != model:
        return label
    merged = dict(old, **_entries(spec))
    kept = [f"{key}={value}" for key, value in merged.items() if not _is_current(cfg, key, value)]
    return f"{model}:{','.join(kept)}" if kept else model


def relabel_plan(labels: List[str], model: str, old_settings: str, config_path: Path) -> Dict[str, str]:
    """old label -> new label for every row of `model` among `labels`; refuses a plan that is empty or would merge
    two rows."""
    cfg = load_config(config_path)
    old = _entries(old_settings)
    if not old:
        raise UserError("--as is empty: give the settings in which the old config differs from the current "
                        f"{config_path}, e.g. --as use_flow_branch=True,flow_loss_weight=0.5.")
    split_variant(f"{model}:{old_settings}")  # the same syntax as a row's
    apply_overrides(copy.deepcopy(cfg), [parse_override(f"{_full_key(k)}={v}") for k, v in old.items()])  # valid as one
    current = [f"{k}={v}" for k, v in old.items() if _is_current(cfg, k, v)]
    if current:
        raise UserError(f"--as {', '.join(current)}: already the value in {config_path}. --as lists how the old "
                        "config differs from the current one.")
    plan = {label: relabeled(label, model, old, cfg) for label in labels if split_variant(label)[0] == model}
    if not plan:
        raise UserError(f"No row of {model} here (rows: {', '.join(labels) or 'none'}).")
    targets = list(plan.values()) + [label for label in labels if label not in plan]
    clashes = sorted({t for t in targets if targets.count(t) > 1})
    if clashes:
        raise UserError(f"Relabelling would merge rows into {', '.join(clashes)}: the runs of two rows would become "
                        "one. Move one of them away first.")
    return plan


def _rename_folders(parent: Path, plan: Dict[str, str]) -> None:
    """Rename `parent/<folder of old>` to `parent/<folder of new>` for each pair (in two steps: the plan may swap)."""
    moved = {}
    for old, new in plan.items():
        source = parent / model_folder(old)
        if source.is_dir() and old != new:
            moved[source.with_name(source.name + ".relabel")] = parent / model_folder(new)
            source.rename(source.with_name(source.name + ".relabel"))
    for temporary, target in moved.items():
        temporary.rename(target)


def _renamed_budget(data: dict, plan: Dict[str, str]) -> dict:
    """`data` (settings.json or leaderboard.json) with its budget's row names renamed."""
    budget = dict(data.get("budget") or {})
    budget["models"] = [plan.get(m, m) for m in budget.get("models", [])]
    budget["overrides"] = {plan.get(k, k): v for k, v in budget.get("overrides", {}).items()}
    return dict(data, budget=budget)


def _rename_ledger(path: Path, plan: Dict[str, str]) -> None:
    ledger = read_json(path)
    if not ledger:
        return
    renamed = {}
    for key, value in ledger.items():
        label, _, seed = key.rpartition("/")
        renamed[f"{plan.get(label, label)}/{seed}"] = value
    atomic_write_text(path, json.dumps(renamed, indent=2))


def relabel(report_dir: Path, model: str, old_settings: str, config_path: Path,
            out: Optional[Path] = None) -> Dict[str, str]:
    """Rename `model`'s rows in the report folder (and the leaderboard folder `out`); returns the plan."""
    settings_path = Path(report_dir) / SETTINGS
    if not settings_path.is_file():
        raise UserError(f"{report_dir} holds no {SETTINGS}: point --report-dir at a report folder.")
    record = {"model": model, "as": old_settings, "config": Path(config_path).name}
    done = [r for r in read_json(settings_path).get(RELABELLED, []) if r.get("model") == model]
    if any(r.get("as") == old_settings for r in done):
        raise UserError(f"{report_dir}: the rows of {model} were already renamed with --as {old_settings}; a second "
                        "time would rename the new config's rows as the old one's.")
    summaries = sorted((Path(report_dir) / SUMMARIES).glob("*/seed-*.json"))
    # the rows of the summaries, and those of the leaderboard folder (e.g. a run started and not yet summarised)
    labels = list(dict.fromkeys([read_json(p).get("model", p.parent.name) for p in summaries] + (
        read_json(Path(out) / "leaderboard.json").get("budget", {}).get("models", []) if out is not None else [])))
    plan = relabel_plan(labels, model, old_settings, config_path)
    changed = {old: new for old, new in plan.items() if old != new}
    for path in summaries:
        data = read_json(path)
        label = data.get("model", path.parent.name)
        if label in changed:
            _dump(path, dict(data, model=changed[label]))
    _rename_folders(Path(report_dir) / SUMMARIES, changed)
    settings = _renamed_budget(read_json(settings_path), changed)
    _dump(settings_path, dict(settings, **{RELABELLED: settings.get(RELABELLED, []) + [record]}))
    if out is not None and Path(out).is_dir():
        _rename_folders(Path(out), changed)
        if (Path(out) / "leaderboard.json").is_file():
            atomic_write_text(Path(out) / "leaderboard.json",
                              json.dumps(_renamed_budget(read_json(Path(out) / "leaderboard.json"), changed), indent=2))
        for ledger in (STARTED, SKIPPED):
            _rename_ledger(Path(out) / ledger, changed)
    return plan
