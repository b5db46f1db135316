"""`RunOptions`: what one `python -m basicts.run` call asks for, typed, handed to the launcher and the runner."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, List, Optional, Tuple

#: what `run_options.json` in a run folder holds: enough to rebuild the run's model (`Forecaster.load`)
RECORD_FILE = "run_options.json"


@dataclass(frozen=True)
class RunOptions:
    """The command line's choices (the config file holds everything else)."""

    config: Path = field(metadata={"help": "The config file (defines CFG)."})
    dataset: Optional[str] = field(default=None, metadata={
        "help": "Prepared dataset to run on (replaces the config's dataset_name); its facts fill the config."})
    overrides: List[Tuple[str, Any]] = field(default_factory=list, metadata={
        "help": "Config entries to set, (key, typed value), in order (--set)."})
    seed: Optional[int] = field(default=None, metadata={"help": "Random seed (None: the config's)."})
    ckpt_dir: Optional[str] = field(default=None, metadata={"help": "Root of run folders (None: the config's)."})
    run_dir: Optional[Path] = field(default=None, metadata={
        "help": "The run folder; None: a fresh <ckpt_save_dir>/<md5>/<time> (or, resuming, the newest one)."})
    resume: bool = field(default=False, metadata={"help": "Continue the run folder's last checkpoint."})
    patience: Optional[int] = field(default=None, metadata={
        "help": "Early stopping after N epochs without a better validation metric (0: none; None: the config's)."})
    max_minutes: Optional[float] = field(default=None, metadata={
        "help": "Wall-clock cap on training, in minutes: the run stops after the epoch that reaches it, is tested, "
                "and is marked as not converged. None: no cap."})
    eval_checkpoint: Optional[Path] = field(default=None, metadata={
        "help": "Evaluate this checkpoint on the test split instead of training."})
    gpus: Optional[str] = field(default=None, metadata={"help": "Visible GPU indices after renumbering; None: CPU."})
    threads: Optional[int] = field(default=None, metadata={"help": "torch CPU threads (None: every available core)."})
    save_results: bool = field(default=False, metadata={
        "help": "Also write test inputs / predictions / targets as .npy files."})
    coverage: Tuple[float, ...] = field(default=(0.9,), metadata={
        "help": "Coverage levels of the prediction intervals calibrated on the validation split after training and on "
                "--eval (`forecast` turns them into bounds; the test split's coverage goes into test_metrics.json)."})
    interval_method: str = field(default="scaled", metadata={
        "help": "How the intervals are calibrated (`conformal.METHODS`): split, scaled (by each input window's "
                "spread; the default, closest to nominal coverage on the committed sets) or recent."})
    history: str = field(default="recent", metadata={
        "help": "How much history every model reads (`protocols.HISTORIES`): recent = the config's input_len, week = "
                "one week of steps, week-residual = a week, forecasting the residual of the copy of one week earlier, weeks-residual = the same "
                "with the median of the copies 1-3 weeks earlier (windows of 3 weeks, the model reads the last)."})
    train_fraction: Optional[float] = field(default=None, metadata={
        "help": "Train on the most recent share of the training split (the part next to validation; the scaler is "
                "fitted on it; validation and test unchanged). None: all of it."})
    test: bool = field(default=True, metadata={
        "help": "Evaluate the best-validation checkpoint on the test split after training; False: validation only "
                "(for tuning: the test split is never evaluated)."})

    def to_record(self, trained_on: Optional[dict] = None) -> dict:
        """The options that rebuild this run's model and data, for `run_options.json` (config path made absolute),
        with the fingerprint of the dataset it was trained (or evaluated) on (`trained_on.dataset_fingerprint`)."""
        return {"config": str(Path(self.config).resolve()), "dataset": self.dataset,
                "overrides": [[key, value] for key, value in self.overrides], "coverage": list(self.coverage),
                "eval_checkpoint": str(Path(self.eval_checkpoint).resolve()) if self.eval_checkpoint else None,
                "seed": self.seed, "trained_on": trained_on, "interval_method": self.interval_method,
                **({"history": self.history} if self.history != "recent" else {}),
                **({"train_fraction": self.train_fraction} if self.train_fraction is not None else {})}

    @classmethod
    def from_record(cls, record: dict) -> "RunOptions":
        """The options of a `run_options.json` (for inference: no run folder, no training choices)."""
        return cls(config=Path(record["config"]), dataset=record.get("dataset"),
                   overrides=[(key, value) for key, value in record.get("overrides", [])],
                   coverage=tuple(record.get("coverage") or (0.9,)),
                   interval_method=record.get("interval_method") or "split",
                   history=record.get("history") or "recent", train_fraction=record.get("train_fraction"))
