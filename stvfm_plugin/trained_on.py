"""What a run was trained on: the prepared dataset's fingerprint and the settings that shaped its weights.

`run_options.json` keeps both (`trained_on`, `seed`, `overrides`). `forecast`, `--eval` and `--resume` compare them
with what they are about to use and refuse, naming the difference, when the dataset was prepared again with other
data: the model would otherwise be applied with a scaler fitted on the new data and the old calibration. `--resume`
with other settings (`--set`, `--dataset`, `--seed`) is refused too: a resumed run continues with the optimizer, the
schedule and the random state of its checkpoint, so another learning rate would be recorded but never used. What a
resume does honour may change: `--set num_epochs=N` (train longer), `--max-minutes`, `--patience`; the record then says
the new value. Every check runs before any file of the run is written.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import List, Optional

from .data.layout import ADJ_FILE, COORDS_FILE, DATA_FILES, META_FILE, TIMESTAMP_FILES, read_meta
from .errors import UserError
from .files import file_sha256

#: the files of a prepared dataset that decide what a model sees
DATASET_FILES = (META_FILE, *DATA_FILES, *TIMESTAMP_FILES, ADJ_FILE, COORDS_FILE)


def dataset_fingerprint(folder: os.PathLike) -> dict:
    """`{"name", "files": {file: sha256}, "meta": {...}}` of a prepared dataset (the files it has)."""
    folder = Path(folder)
    files = {name: file_sha256(folder / name) for name in DATASET_FILES if (folder / name).is_file()}
    return {"name": folder.name, "files": files, "meta": read_meta(folder)}


def dataset_changes(recorded: dict, folder: os.PathLike) -> List[str]:
    """What differs between a recorded fingerprint and the dataset in `folder` now (empty: the same data)."""
    now = dataset_fingerprint(folder)
    old_files, new_files = recorded.get("files", {}), now["files"]
    changed = [f"{name} {'changed' if name in new_files else 'is gone'}" for name in old_files
               if old_files[name] != new_files.get(name)]
    changed += [f"{name} is new" for name in new_files if name not in old_files]
    old_meta, new_meta = recorded.get("meta") or {}, now["meta"]
    entries = [f"{key} {old_meta[key]!r} -> {new_meta[key]!r}" for key in sorted(old_meta.keys() & new_meta.keys())
               if key in ("shape", "start_time", "frequency (minutes)", "split_lengths") and old_meta[key] != new_meta[key]]
    return changed + ([f"meta.json: {'; '.join(entries)}"] if entries else [])


def check_same_dataset(record: dict, folder: os.PathLike, command: str) -> None:
    """Refuse `command` when the run's dataset was prepared again with other data since it was trained (a run of
    before this record exists is not checked)."""
    recorded: Optional[dict] = record.get("trained_on")
    if not recorded or recorded.get("name") != Path(folder).name:
        return
    changed = dataset_changes(recorded, folder)
    if changed:
        raise UserError(f"{command}: dataset {recorded['name']} was prepared again since this run was trained "
                        f"({', '.join(changed[:4])}{', ...' if len(changed) > 4 else ''}); its model, scaler and "
                        "calibration belong to the old data. Train a new run on the new data, or prepare the old data "
                        "again.")


#: `--set` keys a resumed run honours (more epochs); the time cap and patience are options a resume may change too
RESUME_MAY_CHANGE = ("num_epochs",)


def settings_differences(record: dict, dataset: str, overrides: list, seed: Optional[int],
                         history: str = "recent", train_fraction: Optional[float] = None) -> List[str]:
    """The settings a `--resume` asks for that differ from those its run was trained with."""
    differ = []
    if record.get("train_fraction") != train_fraction:
        show = (lambda f: "all of the training split" if f is None else f"--train-fraction {f:g}")
        differ.append(f"{show(record.get('train_fraction'))} there, {show(train_fraction)} here")
    if record.get("history", "recent") != history:
        differ.append(f"--history {record.get('history', 'recent')} there, {history} here")
    if record.get("trained_on") and record["trained_on"].get("name") != dataset:
        differ.append(f"dataset {record['trained_on']['name']} there, {dataset} here")
    old = [list(item) for item in record.get("overrides", []) if item[0] not in RESUME_MAY_CHANGE]
    new = [item for item in json.loads(json.dumps([list(item) for item in overrides]))  # as the record holds them
           if item[0] not in RESUME_MAY_CHANGE]
    if old != new:
        show = (lambda items: ", ".join(f"{k}={v!r}" for k, v in items) or "none")
        differ.append(f"--set {show(old)} there, {show(new)} here")
    if "seed" in record and seed is not None and record["seed"] != seed:
        differ.append(f"seed {record['seed']} there, {seed} here")
    return differ
