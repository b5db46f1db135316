"""Runs trained under other settings than a row's config gives now: never kept as that row's.

`run` and `tune` skip a run that has ended (its folder, or a summary of the report), so a config file that changed
after the run would silently lend its name to the old result. Each run keeps the settings it trained with (the run
folder's `cfg.json`, and from it the summary's `cfg`: `SETTINGS_KEYS`); before training, every ended run is
compared with what its row's config, overrides and dataset give now. A difference stops the call and says how to
rename the old rows (`relabel`) or train them again. Not compared: entries one side lacks (a setting added to a
model since, or a summary written before summaries kept settings), entries the config leaves to the dataset (None)
when the dataset is not prepared here, and where a class lives (`module`: moving code does not change a model).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from ..errors import UserError
from ..protocols import apply_history, fit_patches
from ..files import read_json
from .rows import SETTINGS_KEYS
from .runs import Budget, run_dir, split_variant
from .summaries import without_paths


def kept_settings(cfg: dict) -> dict:
    """The `SETTINGS_KEYS` entries of a run's serialized config that it has."""
    return {key: cfg[key] for key in SETTINGS_KEYS if key in cfg}


def row_settings(budget: Budget, row: str) -> dict:
    """What row `row`'s config, overrides and dataset give now, serialized as a run's `cfg.json`."""
    from ..config_tools import apply_overrides, load_config, parse_override
    from ..data.binding import bind_dataset
    from ..data.info import DatasetInfo

    from ..data.info import dataset_folder
    from ..data.layout import META_FILE

    base, changes = split_variant(row)
    overrides = (budget.overrides.get(base, []) if base != row else []) + budget.overrides.get(row, []) + changes
    cfg = load_config(budget.config_path(row))
    built_input_len = cfg.get("input_len")
    parsed = [parse_override(item) for item in [f"dataset_name={budget.dataset}"] + overrides]
    apply_overrides(cfg, parsed)
    prepared = (dataset_folder(budget.dataset) / META_FILE).is_file()
    if prepared:
        info = DatasetInfo.load(budget.dataset)
        apply_history(cfg, budget.history, info.step_minutes)  # as the run applies --history (`run.describe_run`)
        bind_dataset(cfg, info)
    fit_patches(cfg, built_input_len, {key for key, _ in parsed})  # as the run does, after any change of input_len
    settings = kept_settings(json.loads(str(cfg)))
    return settings if prepared or budget.history == "recent" else _without(settings, LENGTH_KEYS)


#: settings that follow the input length, which a `--history` other than `recent` takes from the dataset
LENGTH_KEYS = ("input_len", "patch_len", "patch_stride")


def _without(settings: dict, keys: Tuple[str, ...]) -> dict:
    """`settings` without `keys` at any depth: a length the dataset decides (a week of its steps), and what follows
    it, is not compared where the dataset is not prepared here."""
    return {k: _without(v, keys) if isinstance(v, dict) else v for k, v in settings.items() if k not in keys}


def _differences(then: dict, now: dict, prefix: str = "") -> List[str]:
    found = []
    for key in sorted(set(then) & set(now) - {"module"}):
        a, b = without_paths(then[key]), without_paths(now[key])
        if isinstance(a, dict) and isinstance(b, dict):
            found += _differences(a, b, f"{prefix}{key}.")
        elif a != b and b is not None:
            found.append(f"{prefix}{key} {a!r} then, {b!r} now")
    return found


def ended_settings(budget: Budget, out: Path, recorded: Dict[Tuple[str, int], str]) -> Dict[Tuple[str, int], tuple]:
    """(row, seed) -> (where, settings) of each ended run a call would keep: a finished folder in `out`, else the
    report's summary."""
    from ..records import RunState
    from ..status import read_status

    found = {}
    for row in budget.models:
        for seed in budget.seeds:
            folder = run_dir(out, row, seed)
            if read_status(folder).get("state") == RunState.FINISHED and (folder / "cfg.json").is_file():
                found[(row, seed)] = (str(folder), kept_settings(read_json(folder / "cfg.json")))
            elif (row, seed) in recorded:
                found[(row, seed)] = (recorded[(row, seed)], read_json(Path(recorded[(row, seed)])).get("cfg", {}))
    return found


def check_not_stale(budget: Budget, out: Path, recorded: Dict[Tuple[str, int], str],
                    report_dir: Optional[Path] = None) -> None:
    """Refuse to keep an ended run whose settings differ from what its row gives now."""
    from ..references import REFERENCES

    ended = ended_settings(budget, out, recorded)
    rows = sorted({row for row, _ in ended if split_variant(row)[0] not in REFERENCES})
    stale = []
    for row in rows:
        now = row_settings(budget, row)
        for (name, seed), (where, then) in sorted(ended.items()):
            differ = _differences(kept_settings(then), now) if name == row else []
            if differ:
                stale.append(f"{row} seed {seed} ({Path(where).name if where.endswith('.json') else where}): "
                             + "; ".join(differ[:4]) + (f"; {len(differ) - 4} more" if len(differ) > 4 else ""))
    if stale:
        base = split_variant(stale[0].split(" seed ")[0])[0]
        raise UserError("These ended runs were trained under other settings than their rows' configs give now, and "
                        "would be kept as those rows: " + " | ".join(stale) + ". If a config file changed, rename the "
                        f"old rows to what they are now: python -m stvfm_plugin.leaderboard relabel --report-dir "
                        f"{report_dir or '<report folder>'} --model {base} --as <old settings> --out {out}; or delete "
                        "those runs (folders and summaries) to train them again.")
