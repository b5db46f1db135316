"""`status.json` of a run folder: what a run is doing, written by the run itself (never by whoever watches it).

    {"state": "running" | "finished" | "failed" | "interrupted" | "diverged", "epoch": 3, "num_epochs": 40,
     "val": 3.52, "best_val": 3.48, "metric": "MAE", "stop_reason": "early stopping" | "max epochs" | "time cap",
     "converged": true, "error": "...", "updated": "2026-11-25 17:00:00"}

(`records.RunState` and `records.StopReason` are the words of `state` and `stop_reason`.)

The leaderboard polls it for progress and reads the outcome from it; `stop_reason` and `converged` also go into
`run_info.json`.
"""
from __future__ import annotations

import json
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Optional

from .files import atomic_write_text, read_json

STATUS_FILE = "status.json"

#: held by the process that trains in a run folder: "<pid> <time>" (see `stvfm_plugin.launch.run_folder_lock`)
LOCK_FILE = "run.lock"


@contextmanager
def folder_lock(lock: Path, in_use: Callable[[int, str], str]) -> Iterator[None]:
    """Hold the folder of the file `lock` for this process (it holds "<pid> <time>"). While the holder is alive,
    another process stops with `UserError(in_use(pid, since))`; a lock left by a killed process is taken over."""
    from .data.layout import process_alive
    from .errors import UserError

    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            break
        except FileExistsError:
            try:
                owner, since = lock.read_text().split(maxsplit=1)
                owner, since = int(owner), since.strip()
            except (OSError, ValueError):
                owner = None
            if owner is not None and process_alive(owner):
                raise UserError(in_use(owner, since)) from None
            lock.unlink(missing_ok=True)  # its process is gone (killed): take the folder over
    else:
        raise UserError(f"{lock.parent}: could not take its lock file {lock}.")
    with os.fdopen(fd, "w") as f:
        f.write(f"{os.getpid()} {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)


def run_owner(folder: os.PathLike) -> Optional[int]:
    """The id of the live process that holds the run folder's lock, or None (no lock, or its process is gone: a
    killed run leaves its status at "running")."""
    from .data.layout import process_alive

    try:
        owner = int((Path(folder) / LOCK_FILE).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return owner if process_alive(owner) else None


def run_process_alive(folder: os.PathLike) -> bool:
    """Whether a live process holds the run folder's lock."""
    return run_owner(folder) is not None


#: files that make a folder a run folder: a run's config or status, or the leaderboard's launch record
RUN_FOLDER_FILES = ("cfg.json", STATUS_FILE, "launch.json")


def is_run_folder(folder: os.PathLike) -> bool:
    """A run (or the leaderboard, for one) has written into `folder`."""
    return any((Path(folder) / name).is_file() for name in RUN_FOLDER_FILES)


def write_status(folder: os.PathLike, **fields) -> None:
    """Replace the run folder's status with `fields` (atomically: a reader never sees half a file)."""
    atomic_write_text(Path(folder) / STATUS_FILE,
                      json.dumps({**fields, "updated": time.strftime("%Y-%m-%d %H:%M:%S")}, indent=2))


def read_status(folder: os.PathLike) -> dict:
    """The run folder's status ({} before the run wrote one); a damaged file is a `UserError` naming it."""
    return read_json(Path(folder) / STATUS_FILE)
