"""`RunSpec`: one run, described once from the command line and handed down to the launcher and the runner."""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .data.info import DatasetInfo
from .run_options import RunOptions


@dataclass(frozen=True)
class RunSpec:
    """What one `python -m basicts.run` call runs: its options, its prepared BasicTS config (overrides applied, the
    dataset's facts filled in) and its dataset, read once."""

    options: RunOptions
    cfg: Any
    dataset: DatasetInfo

    @property
    def model_name(self) -> str:
        return self.cfg.model.__name__

    def in_folder(self, run_dir: Path) -> "RunSpec":
        """This run, in the run folder `run_dir`."""
        return replace(self, options=replace(self.options, run_dir=Path(run_dir)))
