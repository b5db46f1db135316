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
from pathlib import Path
from typing import Callable, List, Optional

from .collect import collect, deleted_runs
from .few_shot import few_shot_figure
from .figures import figures, forecast_figure
from .markdown import csv_rows, markdown
from .summaries import SETTINGS, collect_summaries, export_summaries, keep_earlier_runs


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
        forecast_figure(rows, settings["budget"]["dataset"], report_dir) + \
        few_shot_figure(rows, settings["budget"]["dataset"], report_dir)
