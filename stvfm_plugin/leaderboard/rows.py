"""Rows of a leaderboard report: one `ModelRow` per model, its `SeedRun`s, their means, stds and ranks."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from ..references import REFERENCES
from ..records import Outcome, StopReason

METRICS = ("MAE", "RMSE", "MAPE")
HORIZONS = (3, 6, 12)
#: how each kind of `peak_memory_mb` in run_info.json was measured
MEMORY_KINDS = {"process_peak_rss": "peak resident memory of the training process (includes Python, torch and the data)",
                "cuda_max_allocated": "peak CUDA memory allocated by torch"}
#: config entries that must agree between models for the comparison to be fair
PROTOCOL_KEYS = ("dataset_name", "null_val", "scaler", "norm_each_channel", "rescale", "metrics", "eval_horizons",
                 "dataset_params", "num_epochs")
#: the entries of a run's config that define the trained model beyond the protocol (kept in summaries, for the check
#: of `stale`)
SETTINGS_KEYS = ("model", "model_config", "optimizer", "optimizer_params", "lr_scheduler", "lr_scheduler_params",
                 "train_batch_size")


@dataclass
class SeedRun:
    seed: int
    state: Outcome
    metrics: Dict[str, Dict[str, float]] = field(default_factory=dict)
    info: dict = field(default_factory=dict)
    cfg: dict = field(default_factory=dict)
    error: str = ""
    forecast: dict = field(default_factory=dict)  # a slice of test forecasts for the figure (see forecast_sample)

    def __post_init__(self) -> None:
        self.state = Outcome.of(self.state)  # a stored word becomes its member

    @property
    def ended(self) -> bool:
        """Will not train further: finished, stopped by the time cap, or skipped after another seed was."""
        return self.state.ended

    @property
    def label(self) -> str:
        """The state as the report shows it (an unscorable run: why)."""
        return self.error if self.state is Outcome.UNSCORABLE else str(self.state)


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
        return [r for r in self.runs if r.state is Outcome.FINISHED]

    @property
    def is_variant(self) -> bool:
        """An ablation row (`MODEL:key=value`), reported against its model, not ranked."""
        return ":" in self.model

    @property
    def is_reference(self) -> bool:
        """A naive reference (trained on nothing): ranked with the models, never the best baseline."""
        return self.model in REFERENCES

    @property
    def left_out(self) -> bool:
        """The leaderboard does not train this model (`run --leave-out`): a row with its reason, never a rival."""
        return any(r.state is Outcome.LEFT_OUT for r in self.runs)

    @property
    def capped(self) -> List[SeedRun]:
        """Runs stopped by the time cap: tested, but left out of means and ranks."""
        return [r for r in self.runs if r.state is Outcome.NOT_CONVERGED]

    def states(self) -> str:
        """The runs' states with counts, e.g. `finished x2, running`."""
        found = [r.label for r in self.runs]
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

    def at_epoch_limit(self) -> int:
        """How many finished runs the epoch limit stopped, their patience unspent (they may still have improved)."""
        return len(self.epoch_limited)

    @property
    def epoch_limited(self) -> List[SeedRun]:
        """The finished runs that the epoch limit, not early stopping, ended."""
        return [r for r in self.finished if r.info.get("stop_reason") == StopReason.MAX_EPOCHS]

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
        """The lines of the first finished run that name a pretrained backbone, its weights or a wrapped network."""
        return [line for r in self.finished[:1] for line in r.info.get("backbone_report", [])]

    def cpu_threads(self) -> Optional[List[int]]:
        """Torch's CPU thread counts the finished runs trained with, or None if a run did not record them."""
        if not self.finished or any("cpu_threads" not in r.info for r in self.finished):
            return None
        return sorted({n for r in self.finished for n in r.info["cpu_threads"]})

    def memory_kinds(self) -> List[str]:
        return sorted({r.info["peak_memory_mb"]["kind"] for r in self.finished if r.info.get("peak_memory_mb")})


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


def _rank(rows: List[ModelRow]) -> None:
    """Rank the models (not their ablation rows) with a converged run by mean test MAE."""
    ranked = sorted((r for r in rows if r.finished and not r.is_variant), key=lambda r: r.mean("overall", "MAE"))
    for i, row in enumerate(ranked, 1):
        row.rank = i


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


def epoch_limit_caveat(behind: ModelRow) -> str:
    """A sentence for a comparison whose side behind had runs the epoch limit stopped, not early stopping ('' when it
    had none): with their patience unspent they may still have improved and closed the gap, so the answer holds at
    this budget only. (Runs of the side ahead cut short would only widen the gap.)"""
    n = behind.at_epoch_limit()
    if not n:
        return ""
    return (f" Caveat: the epoch limit, not early stopping, ended {behind.model}, the side behind, in {n} of "
            f"{len(behind.finished)} seeds (patience unspent: more epochs might close the gap), so this answer holds "
            "at this epoch budget only.")
