"""`status.json` of a run folder: what a run is doing, written by the run itself (never by whoever watches it).

    {"state": "running" | "finished" | "failed" | "interrupted", "epoch": 3, "num_epochs": 40,
     "val": 3.52, "best_val": 3.48, "metric": "MAE", "stop_reason": "early stopping" | "max epochs" | "time cap",
     "converged": true, "error": "...", "updated": "2026-11-25 17:00:00"}

The leaderboard polls it for progress and reads the outcome from it; `stop_reason` and `converged` also go into
`run_info.json`.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

STATUS_FILE = "status.json"
#: why training ended -> whether the run counts as converged
STOP_REASONS = {"early stopping": True, "max epochs": True, "time cap": False}


#: held by the process that trains in a run folder: "<pid> <time>" (see `stvfm_plugin.launch.run_folder_lock`)
LOCK_FILE = "run.lock"


def run_process_alive(folder: os.PathLike) -> bool:
    """Whether the process holding the run folder's lock is still alive (False without a lock: a killed run
    leaves its status at "running")."""
    from .data.layout import process_alive

    try:
        return process_alive(int((Path(folder) / LOCK_FILE).read_text().split()[0]))
    except (OSError, ValueError, IndexError):
        return False


#: files that make a folder a run folder: a run's config or status, or the leaderboard's launch record
RUN_FOLDER_FILES = ("cfg.json", STATUS_FILE, "launch.json")


def is_run_folder(folder: os.PathLike) -> bool:
    """A run (or the leaderboard, for one) has written into `folder`."""
    return any((Path(folder) / name).is_file() for name in RUN_FOLDER_FILES)


def write_status(folder: os.PathLike, **fields) -> None:
    """Replace the run folder's status with `fields` (atomically: a reader never sees half a file)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{STATUS_FILE}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps({**fields, "updated": time.strftime("%Y-%m-%d %H:%M:%S")}, indent=2))
    os.replace(tmp, folder / STATUS_FILE)


def read_status(folder: os.PathLike) -> dict:
    """The run folder's status ({} when there is none yet, or while it cannot be read)."""
    try:
        return json.loads((Path(folder) / STATUS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
