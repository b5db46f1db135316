"""`DatasetInfo`: the one owner of a prepared dataset's facts, read from its `meta.json`.

Configs, the runner, the leaderboard and the models take nodes, step, calendar features, the null
value, the graph and the coordinates from here; `dataset_folder` is the one place that knows where
BasicTS looks for a dataset.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from ..basicts_compat.null_value import plugin_null_val
from ..errors import UserError
from .graph import graph_stats
from .layout import DATA_FILES, META_FILE, load_coords, load_graph, read_meta

#: where BasicTS 1.1.0 reads datasets (datasets/<name>, relative to the working directory): the one place
DATASETS_ROOT = "datasets"
MINUTES_PER_DAY = 24 * 60


def dataset_folder(name: str, root: os.PathLike = DATASETS_ROOT) -> Path:
    """The folder of dataset `name`: `<root>/<name>`."""
    return Path(root) / name


def steps_per_day(step_minutes: int) -> Optional[int]:
    """Time-of-day slots for a step size: `1440 / step` when the step divides a day and is shorter, else None."""
    if step_minutes < MINUTES_PER_DAY and MINUTES_PER_DAY % step_minutes == 0:
        return MINUTES_PER_DAY // step_minutes
    return None


@dataclass(frozen=True)
class DatasetInfo:
    """What models and configs need to know about one prepared dataset."""

    name: str = field(metadata={"help": "Dataset name (its folder name)."})
    folder: Path = field(metadata={"help": "The prepared folder."})
    num_nodes: int = field(metadata={"help": "Spatial points N (graph nodes or grid cells)."})
    num_channels: int = field(metadata={"help": "Channels C of the signal (1 for [L, N] data)."})
    step_minutes: int = field(metadata={"help": "Minutes between two steps (10080 for weekly data)."})
    null_val: Optional[float] = field(metadata={
        "help": "Value that marks a missing reading (masked in loss and metrics); None: every reading is data."})
    split_lengths: Dict[str, int] = field(metadata={"help": "Steps of the train, val and test splits."})
    ratios: Tuple[float, ...] = field(metadata={"help": "Split ratios train, val, test."})
    start: Optional[str] = field(default=None, metadata={"help": "ISO time of the first step, when known."})
    grid_shape: Optional[Tuple[int, int]] = field(default=None, metadata={"help": "H, W of a grid dataset."})
    has_graph: bool = field(default=False, metadata={"help": "adj_mx.pkl is present."})
    has_coords: bool = field(default=False, metadata={"help": "coords.npy is present."})
    synthetic: Optional[dict] = field(default=None, metadata={"help": "Generator options of a synthetic set."})
    node_ids: Optional[Tuple[str, ...]] = field(default=None, metadata={
        "help": "The sensors' ids in node order, as the raw signal's header gave them; None: numbered 0..N-1."})
    utc_offset: Optional[str] = field(default=None, metadata={
        "help": "UTC offset of the wall-clock times (`data.time_axis`'s rule); None: the data's local clock."})
    missing_share: float = field(default=0.0, metadata={"help": "Share of the readings equal to the null value."})
    channel_names: Optional[Tuple[str, ...]] = field(default=None, metadata={
        "help": "Channels of a signal prepared one series per (node, channel), node-major; None: one channel."})
    digit_stamps: str = field(default="hours", metadata={
        "help": "How ten-digit stamps of a grid file read (`time_axis.DIGIT_RULES`), as the data's were read: a newer "
                "file of `forecast --data` is read alike."})
    stated_floor: Optional[object] = field(default="from the data", metadata={
        "help": "The lowest value a reading can take, as `prepare --floor` stated it (None: no floor); absent: the "
                "training split tells (`floor`)."})

    @classmethod
    def load(cls, name: str, root: os.PathLike = DATASETS_ROOT) -> "DatasetInfo":
        """The facts of prepared dataset `name` (or of the folder `name` when it holds a meta.json)."""
        folder = Path(name) if (Path(name) / META_FILE).is_file() else dataset_folder(name, root)
        meta = read_meta(folder)
        settings = meta.get("regular_settings", {})
        shape = meta.get("shape") or []
        if len(shape) < 2 or "frequency (minutes)" not in meta:
            raise UserError(f"{folder / META_FILE} lacks the shape or step of the data; prepare the dataset again "
                            "(python -m stvfm_plugin.data prepare ...).")
        null = settings.get("null_val")
        return cls(
            name=meta.get("name") or folder.name, folder=folder, num_nodes=int(shape[1]),
            num_channels=int(shape[2]) if len(shape) > 2 else 1, step_minutes=int(meta["frequency (minutes)"]),
            null_val=plugin_null_val(null),
            split_lengths={k: int(v) for k, v in meta.get("split_lengths", {}).items()},
            ratios=tuple(settings.get("train_val_test_ratio", ())), start=meta.get("start_time"),
            grid_shape=tuple(meta["grid_shape"]) if meta.get("grid_shape") else None,
            has_graph=bool(meta.get("has_graph")), has_coords=bool(meta.get("has_coords")),
            synthetic=(meta.get("source") or {}).get("synthetic"),
            node_ids=tuple(map(str, meta["node_ids"])) if meta.get("node_ids") else None,
            utc_offset=meta.get("utc_offset"), missing_share=float(meta.get("missing_share") or 0.0),
            stated_floor=meta.get("floor", "from the data"),
            digit_stamps=(meta.get("time_axis") or {}).get("digit_stamps", "hours"),
            channel_names=tuple((meta.get("channels") or {}).get("names") or ()) or None)

    # ---- calendar features ---------------------------------------------------------------------
    @property
    def steps_per_day(self) -> Optional[int]:
        """Time-of-day slots, or None when time of day means nothing at this step."""
        return steps_per_day(self.step_minutes)

    @property
    def time_of_day(self) -> bool:
        """Time-of-day features make sense: the step is shorter than a day and divides it."""
        return self.steps_per_day is not None

    @property
    def day_of_week(self) -> bool:
        """Day-of-week features make sense: steps of at most a day, and training covers every weekday."""
        return self.step_minutes <= MINUTES_PER_DAY and self._train_days() >= 7

    def _train_days(self) -> float:
        return self.split_lengths.get("train", 0) * self.step_minutes / MINUTES_PER_DAY

    def calendar_off(self) -> Dict[str, str]:
        """`time_of_day` / `day_of_week` -> why that feature is off for this dataset (absent when it is on)."""
        off = {}
        if not self.time_of_day:
            off["time_of_day"] = ("time of day off (steps of a day or more)" if self.step_minutes >= MINUTES_PER_DAY
                                  else f"time of day off (a {self.step_minutes}-minute step does not divide a day)")
        if self.step_minutes > MINUTES_PER_DAY:
            off["day_of_week"] = "day of week off (steps of more than a day)"
        elif not self.day_of_week:
            off["day_of_week"] = (f"day of week off (the training split covers {self._train_days():.1f} days, so "
                                  "some weekdays of the test split never occur in training)")
        return off

    def calendar_notes(self) -> List[str]:
        """What the calendar features are for this dataset: why one is off, and where the clock starts when the
        dataset does not know its start time, one line each (empty when both are on and the start is known)."""
        notes = list(self.calendar_off().values())
        if self.start is None and (self.time_of_day or self.day_of_week):
            notes.append("no start time: step 0 is taken as 00:00 on a Monday for the time of day and day of week; "
                         "prepare again with --start TIME (e.g. 2012-03-01T00:00) for the real clock")
        return notes

    def calendar_summary(self) -> str:
        """One line: which calendar features a model gets at this step, e.g. `time of day (24 slots), day of week`."""
        on = ([f"time of day ({self.steps_per_day} slots)"] if self.time_of_day else []) + \
            (["day of week"] if self.day_of_week else [])
        return ", ".join(on) if on else "none"

    @property
    def floor(self) -> Optional[float]:
        """The lowest value a reading can take, for interval bounds: the floor `prepare --floor` stated, else 0 when no
        reading of the training split is negative (counts, speeds), else None."""
        if self.stated_floor != "from the data":
            return None if self.stated_floor is None else float(self.stated_floor)
        train = np.asarray(np.load(self.folder / DATA_FILES[0], mmap_mode="r"))
        kept = train[np.isfinite(train) & (train != self.null_val if self.null_val is not None else True)]
        return 0.0 if kept.size and float(kept.min()) >= 0 else None

    # ---- structure -----------------------------------------------------------------------------------
    @property
    def sensor_ids(self) -> Tuple[str, ...]:
        """The sensors' ids in node order (`node_ids`, else "0".."N-1")."""
        return self.node_ids or tuple(str(i) for i in range(self.num_nodes))

    def graph(self) -> Optional[np.ndarray]:
        """The adjacency `[N, N]`, or None."""
        return load_graph(self.folder)

    def coords(self) -> Optional[np.ndarray]:
        """Node coordinates `[N, 2]` (latitude, longitude), or None."""
        return load_coords(self.folder)

    def describe(self) -> str:
        """One line for logs."""
        null = "none (every reading is data)" if self.null_val is None else f"{self.null_val:g} (masked)"
        extras = [x for x, on in (("graph", self.has_graph), ("coordinates", self.has_coords)) if on]
        return (f"{self.name}: {self.num_nodes} nodes, {self.step_minutes}-minute steps, splits "
                f"{'/'.join(str(v) for v in self.split_lengths.values())}, null value {null}"
                f"{', ' + ' and '.join(extras) if extras else ''}")


def describe_dataset(folder: Path) -> str:
    """A short human-readable description of a prepared dataset (`info`)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{folder} does not exist. Prepare it first (python -m stvfm_plugin.data prepare ...).")
    meta = read_meta(folder)
    missing = [f for f in DATA_FILES if not (folder / f).is_file()]
    if missing:
        raise UserError(f"{folder} lacks {missing}: prepare it again.")
    arrays = [np.load(folder / f, mmap_mode="r") for f in DATA_FILES]
    total = sum(a.shape[0] for a in arrays)
    null = meta["regular_settings"]["null_val"]
    zeros = sum(int(np.count_nonzero(np.asarray(a) == null)) for a in arrays) if null is not None else 0
    cells = sum(a.size for a in arrays)
    lines = [
        f"dataset     {meta['name']}  ({folder})",
        f"shape       {total} x {' x '.join(map(str, arrays[0].shape[1:]))}  (time x nodes{' x channels' if arrays[0].ndim == 3 else ''})",
        f"splits      train {arrays[0].shape[0]} / val {arrays[1].shape[0]} / test {arrays[2].shape[0]} steps  "
        f"(ratios {meta['regular_settings']['train_val_test_ratio']})",
        f"frequency   {meta['frequency (minutes)']} min  (start {meta.get('start_time') or 'unknown: day 0 = day-of-week 0'})",
        (f"missing     {100.0 * zeros / max(cells, 1):.2f} % of readings equal the null value {null} (masked)"
         if null is not None else "missing     none: no null value, every reading is scored"),
        f"values      min {min(float(np.min(a)) for a in arrays):.3f}  max {max(float(np.max(a)) for a in arrays):.3f}",
        f"protocol    {meta['regular_settings']}",
    ]
    adj = load_graph(folder)
    if adj is None:
        lines.append("graph       none")
    else:
        s = graph_stats(adj)
        lines.append(f"graph       {s['nodes']} nodes, {s['edges']} edges, mean out-degree {s['mean_degree']:.2f}, "
                     f"{'symmetric' if s['symmetric'] else 'directed'}, {s['components']} connected component(s)")
    lines.append(f"coordinates {'yes' if load_coords(folder) is not None else 'no'}")
    if meta.get("source"):
        lines.append(f"source      {meta['source']}")
    return "\n".join(lines)
