"""Typed records shared by the runner and the leaderboard: how a run stands, why it stopped, and where a frozen
backbone's weights came from.

They are `str` enums, so that the JSON files (`status.json`, `run_info.json`, the report summaries) keep the plain
words they always held (`"finished"`, `"early stopping"`, `"not converged (time cap)"`): older files read back as the
same members, and a reader of the files needs no code.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import Enum
from pathlib import Path
from typing import Dict, List, Optional

from .errors import UserError


class Word(str, Enum):
    """A `str` enum whose members print and format as their word (Python 3.9's `str` enums print their name)."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)


class RunState(Word):
    """What a run folder's own process says it is doing (`status.json` `state`)."""

    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    DIVERGED = "diverged"


class StopReason(Word):
    """Why training ended (`status.json` / `run_info.json` `stop_reason`)."""

    EARLY_STOPPING = "early stopping"
    MAX_EPOCHS = "max epochs"
    TIME_CAP = "time cap"
    NOTHING_TO_TRAIN = "nothing to train"  # a naive reference

    @property
    def converged(self) -> bool:
        """Whether a run that stopped for this reason counts as converged (the time cap cut it short)."""
        return self is not StopReason.TIME_CAP


class Outcome(Word):
    """How a leaderboard row's run stands, as the report tells it (the run's `RunState` read with the leaderboard's
    ledgers and the run's results)."""

    FINISHED = "finished"
    NOT_CONVERGED = "not converged (time cap)"  # tested, but never in a mean or a rank
    SKIPPED = "skipped after the time cap"  # left untrained by --skip-seeds-after-cap
    UNSCORABLE = "unscorable"  # finished, but its predictions or metrics are not finite: never ranked
    RUNNING = "running"
    INTERRUPTED = "interrupted"
    FAILED = "failed"
    DIVERGED = "diverged"
    NOT_STARTED = "not started"
    DELETED = "deleted"  # started, but its folder is gone
    LEFT_OUT = "left out"  # a model this leaderboard does not train (`run --leave-out`; its reason is the row's error)

    @property
    def ended(self) -> bool:
        """Will not train further (unless asked again)."""
        return self in (Outcome.FINISHED, Outcome.NOT_CONVERGED, Outcome.SKIPPED, Outcome.LEFT_OUT)

    @classmethod
    def of(cls, state: Optional[str]) -> "Outcome":
        """The outcome a stored word stands for (a summary's `state`)."""
        try:
            return cls(state)
        except ValueError:
            raise UserError(f"unknown run state {state!r} (known: {', '.join(o.value for o in cls)}); was the summary "
                            "edited by hand?") from None


class BackboneKind(Word):
    """Where a frozen backbone's weights came from."""

    FILE = "file"  # a local file (backbone_weights, the weights folder variable or the hub's cache)
    HUB = "hub"  # downloaded by timm from the Hugging Face hub
    RANDOM = "random"  # random initialisation: asked for (pretrained=False) or fallen back to


@dataclass(frozen=True)
class BackboneSource:
    """Where a frozen backbone's weights came from, recorded in `run_info.json` (`backbone`) and checked when a
    checkpoint is loaded."""

    kind: BackboneKind
    name: str  # the file's name, the hub id, or the architecture of a random backbone
    found_by: str  # how: "backbone_weights", the environment variable, "Hugging Face cache", "hub", "pretrained=False"
    sha256: Optional[str] = None  # of the weights file (None: random, or a hub download not cached as a file)
    path: Optional[Path] = None  # the file read (never written to summaries: machine-specific)

    @property
    def is_random(self) -> bool:
        return self.kind is BackboneKind.RANDOM

    def describe(self) -> str:
        """One line for the log and the build report."""
        if self.kind is BackboneKind.RANDOM:
            return f"RANDOM ({self.found_by})"
        if self.kind is BackboneKind.HUB:
            return f"hub timm/{self.name}"
        return f"file {self.path or self.name} (sha256 {(self.sha256 or '?')[:12]}, via {self.found_by})"

    def to_json(self) -> dict:
        """The record without the machine-specific path."""
        record = asdict(self)
        record.pop("path")
        record["kind"] = self.kind.value
        return record


@dataclass
class RunInfo:
    """What a run folder's `run_info.json` records for the leaderboard: sizes, speed, memory, how training ended
    and what the model reported about itself."""

    model: str
    dataset: str
    input_len: Optional[int]
    output_len: Optional[int]
    num_epochs: int
    epochs_run: int
    seconds_per_epoch: List[float]
    total_params: int
    trainable_params: int
    device: str
    batch_size: Optional[int]
    inference_ms_per_batch: Optional[float]
    peak_memory_mb: dict  # {"kind": "process_peak_rss" | "cuda_max_allocated", "mb": float}
    cpu_threads: List[int]
    seed: Optional[int]
    stop_reason: Optional[StopReason]
    converged: Optional[bool]
    max_minutes: Optional[float]
    tested: bool
    best_metrics: Dict[str, float]
    build_report: List[str]
    backbone_report: List[str]  # the build-report lines naming a pretrained backbone, its weights or a wrapped network
    mape_note: Optional[str]
    nonfinite_predictions: int
    warnings: List[str]
    backbone: Optional[dict] = None  # `BackboneSource.to_json()` of a model with a frozen backbone
    train_fraction: Optional[float] = None  # `--train-fraction`: the most recent share of the training split trained on
    train_windows: Optional[int] = None  # training windows per epoch

    #: what an evaluation (no epochs) or a resumed run keeps from the earlier record
    TRAINING_KEYS = ("epochs_run", "seconds_per_epoch", "best_metrics", "stop_reason", "converged", "max_minutes",
                     "train_windows")

    def merged_with(self, previous: dict) -> "RunInfo":
        """This record completed by the folder's earlier one: an evaluation keeps what training recorded; a resumed
        run keeps the earlier peak memory and thread counts."""
        if not previous:
            return self
        earlier_peak = previous.get("peak_memory_mb") or {}
        if earlier_peak.get("kind") == self.peak_memory_mb["kind"]:
            self.peak_memory_mb["mb"] = max(self.peak_memory_mb["mb"], earlier_peak["mb"])
        self.cpu_threads = sorted(set(self.cpu_threads) | set(previous.get("cpu_threads", [])))
        if not self.seconds_per_epoch:
            for key in self.TRAINING_KEYS:
                setattr(self, key, previous.get(key, getattr(self, key)))
        if self.inference_ms_per_batch is None:
            self.inference_ms_per_batch = previous.get("inference_ms_per_batch")
        return self

    def to_json(self) -> dict:
        record = asdict(self)
        for key in ("backbone", "train_fraction"):  # absent rather than null: no backbone, all of the training split
            if record[key] is None:
                record.pop(key)
        return record
