"""The small file helpers every part shares: atomic writes, JSON reads that name a damaged file, sha256 of a file."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Callable

from .errors import UserError


def atomic_write(path: os.PathLike, write: Callable[[Path], None]) -> None:
    """Have `write(tmp)` write a temporary file beside `path`, then rename it to `path`: a reader never sees half a
    file, and an interrupted write leaves the old one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    write(tmp)
    os.replace(tmp, path)


def atomic_write_text(path: os.PathLike, text: str) -> None:
    """Write `text` to `path` atomically (`atomic_write`)."""
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def read_json(path: os.PathLike) -> dict:
    """A JSON file of a run, leaderboard or report folder ({} when absent); a damaged one is a `UserError` naming it."""
    path = Path(path)
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise UserError(f"{path} is not valid JSON ({e}); it was damaged or cut short. Restore it, or delete that "
                        "run folder to train the run again.") from None


def file_sha256(path: os.PathLike) -> str:
    """The sha256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
