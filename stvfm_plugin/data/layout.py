"""The BasicTS 1.1.0 dataset layout, written atomically.

```
<root>/<NAME>/{train,val,test}_data.npy        float32 [L_split, N] (or [L_split, N, C])
<root>/<NAME>/{train,val,test}_timestamps.npy  float32 [L_split, 2]: time of day, day of week in [0, 1)
<root>/<NAME>/meta.json                        description + `regular_settings` (read by BasicTS)
<root>/<NAME>/adj_mx.pkl                       pickled float32 [N, N] (read by `basicts.utils.load_adj`)
<root>/<NAME>/coords.npy                       float64 [N, 2] latitude, longitude (optional)
```
Everything is written into a temporary sibling folder that is renamed into place at the end, so
a failure never leaves a half-written dataset behind.
"""
from __future__ import annotations

import datetime as dt
import json
import math
import os
import pickle
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np

from ..errors import UserError
from ..files import file_sha256

SPLITS = ("train", "val", "test")
DATA_FILES = tuple(f"{s}_data.npy" for s in SPLITS)
TIMESTAMP_FILES = tuple(f"{s}_timestamps.npy" for s in SPLITS)
META_FILE = "meta.json"
ADJ_FILE = "adj_mx.pkl"
COORDS_FILE = "coords.npy"


@dataclass
class DatasetSpec:
    """Everything `write_dataset` needs besides the signal itself."""

    name: str
    step_minutes: int = field(metadata={"help": "Minutes between two time steps."})
    ratios: Sequence[float] = (0.6, 0.2, 0.2)
    null_val: Optional[float] = field(default=0.0, metadata={
        "help": "Value that marks a missing reading; None: every reading is data (nothing masked)."})
    start: Optional[dt.datetime] = field(
        default=None, metadata={"help": "Time of the first step. None: day 0 is day-of-week 0 (BasicTS's convention)."})
    norm_each_channel: bool = False
    rescale: bool = True
    metrics: Sequence[str] = ("MAE", "RMSE", "MAPE")
    domain: str = "traffic"
    min_window: int = field(default=24, metadata={"help": "input_len + output_len every split must hold."})
    source: dict = field(default_factory=dict)
    grid_shape: Optional[Sequence[int]] = None
    node_ids: Optional[List[str]] = field(default=None, metadata={
        "help": "The sensors' ids in node order (a signal header); None: the nodes are numbered 0..N-1."})
    channel_names: Optional[List[str]] = field(default=None, metadata={
        "help": "The channels of a signal written one series per (node, channel) (`channels_as_series`); None: one."})
    utc_offset: Optional[str] = field(default=None, metadata={
        "help": "The UTC offset the time stamps were converted to (`time_axis`); None: the data's local clock."})
    floor: Optional[object] = field(default="from the data", metadata={
        "help": "The lowest value a reading can take (interval bounds never go below it); None: none; 'from the "
                "data': 0 when no reading is negative."})
    time_axis: Optional[dict] = field(default=None, metadata={
        "help": "What was done to the file's time stamps (`time_axis.AxisReport`); None: the file had none."})


def check_name(name: str) -> None:
    """A dataset name is one plain folder name: not empty, not `.` or `..`, no path separator."""
    if not name or name in (".", "..") or "/" in name or "\\" in name or name.startswith("~"):
        raise UserError(f"Dataset name {name!r} must be a plain folder name (letters, digits, - or _), not a path; "
                        "use --out to choose where datasets are written.")


def check_ratios(ratios: Sequence[float]) -> None:
    """Three finite positive split ratios that sum to 1 (within 1e-6)."""
    if len(ratios) != 3 or not all(math.isfinite(r) and r > 0 for r in ratios):
        raise UserError(f"Split ratios must be three positive numbers (train, val, test); got {list(ratios)}.")
    if abs(sum(ratios) - 1.0) > 1e-6:
        raise UserError(f"Split ratios {list(ratios)} sum to {sum(ratios):g}, not 1; give shares that sum to 1, "
                        "e.g. 0.6,0.2,0.2.")


def split_lengths(num_steps: int, ratios: Sequence[float]) -> tuple[int, int, int]:
    """Split sizes as BasicTS computes them: floor for train and val, the rest for test."""
    check_ratios(ratios)
    total = float(sum(ratios))
    n_train = int(num_steps * ratios[0] / total)
    n_val = int(num_steps * ratios[1] / total)
    return n_train, n_val, num_steps - n_train - n_val


def make_timestamps(num_steps: int, step_minutes: int, start: Optional[dt.datetime]) -> np.ndarray:
    """Time of day and day of week, both as fractions in [0, 1): float32 [L, 2], for any step size.

    With `start`, steps are counted from that date and time (Monday = 0); without it, step 0 is
    midnight of a day with day-of-week 0, as in BasicTS's own preparation scripts. (Whether a model
    should use them at this step is `DatasetInfo.time_of_day` / `day_of_week`.)
    """
    first, weekday = 0, 0
    if start is not None:
        first, weekday = start.hour * 60 + start.minute, start.weekday()
    minutes = first + np.arange(num_steps, dtype=np.int64) * step_minutes
    day = 24 * 60
    tod = (minutes % day) / day
    dow = ((minutes // day + weekday) % 7) / 7
    return np.stack([tod, dow], axis=1).astype(np.float32)


#: largest |reading| a dataset may hold: float32 squares overflow near 3.4e38, and a sum of squared errors over a
#: test split overflows long before (RMSE infinite)
MAX_READING = 1e15


def check_scale(name: str, data: np.ndarray, when: str) -> None:
    """Refuse readings beyond `MAX_READING` (their errors overflow float32); `when` ends the hint."""
    largest = float(np.abs(data).max()) if data.size else 0.0
    if largest > MAX_READING:
        raise UserError(f"Dataset {name}: readings as large as {largest:.3g}; squared errors overflow float32 beyond "
                        f"about {MAX_READING:g}, so RMSE would be infinite. Rescale the data (e.g. to thousands) {when}.")


def _validate(spec: DatasetSpec, data: np.ndarray, adj: Optional[np.ndarray], coords: Optional[np.ndarray]) -> None:
    if data.ndim not in (2, 3):
        raise UserError(f"Dataset {spec.name}: the signal must be [time, nodes] or [time, nodes, channels]; "
                        f"got shape {list(data.shape)}.")
    check_name(spec.name)
    if spec.start is not None and (spec.start.second or spec.start.microsecond
                                   or (spec.start.hour * 60 + spec.start.minute) % (spec.step_minutes or 1)):
        raise UserError(f"Dataset {spec.name}: the start {spec.start.isoformat()} is not on the grid of "
                        f"{spec.step_minutes}-minute steps from midnight; give the time of the first reading.")
    if not isinstance(spec.step_minutes, int) or spec.step_minutes < 1:
        raise UserError(f"Dataset {spec.name}: the step must be a whole number of minutes of at least 1; "
                        f"got {spec.step_minutes}.")
    num_steps, num_nodes = data.shape[:2]
    if num_nodes < 1 or num_steps < 1:
        raise UserError(f"Dataset {spec.name}: the signal is empty (shape {list(data.shape)}).")
    bad = ~np.isfinite(data)
    if bad.any():
        t, n = np.argwhere(bad)[0][:2]
        raise UserError(f"Dataset {spec.name}: the signal holds {int(bad.sum())} NaN/inf values (first at step {t}, "
                        f"node {n}). Replace them with a missing-value marker first (--nan-as-missing with a --null-value).")
    if adj is not None:
        if adj.ndim != 2 or adj.shape[0] != adj.shape[1]:
            raise UserError(f"Dataset {spec.name}: the adjacency must be square; got shape {list(adj.shape)}.")
        if adj.shape[0] != num_nodes:
            raise UserError(f"Dataset {spec.name}: the graph has {adj.shape[0]} nodes but the signal has {num_nodes}. "
                            "Check that the graph file belongs to this dataset (and the channel/node axis order).")
        if not np.isfinite(adj).all():
            raise UserError(f"Dataset {spec.name}: the adjacency holds NaN/inf values.")
        if (adj < 0).any():
            i, j = np.argwhere(adj < 0)[0]
            raise UserError(f"Dataset {spec.name}: the adjacency holds {int((adj < 0).sum())} negative weights (first "
                            f"{float(adj[i, j]):g} from node {i} to {j}); edge weights must be 0 or positive.")
    if coords is not None and coords.shape != (num_nodes, 2):
        raise UserError(f"Dataset {spec.name}: coordinates must be [nodes, 2] = [{num_nodes}, 2]; "
                        f"got {list(coords.shape)}.")
    if spec.grid_shape is not None and int(np.prod(spec.grid_shape)) != num_nodes:
        raise UserError(f"Dataset {spec.name}: grid shape {list(spec.grid_shape)} holds "
                        f"{int(np.prod(spec.grid_shape))} cells but the signal has {num_nodes} nodes.")
    check_scale(spec.name, data, "before preparing it")
    lengths = split_lengths(num_steps, spec.ratios)
    short = [(s, n) for s, n in zip(SPLITS, lengths) if n < spec.min_window]
    if short:
        desc = ", ".join(f"{s} {n}" for s, n in short)
        raise UserError(f"Dataset {spec.name}: too few steps ({num_steps}) for windows of {spec.min_window} steps "
                        f"(input + output) in every split: {desc} steps. Use a longer series, other split ratios "
                        "or shorter windows (--min-window).")
    if spec.null_val is not None:
        bounds = np.cumsum([0, *lengths])
        empty = [name for name, a, b in zip(SPLITS, bounds[:-1], bounds[1:])
                 if np.isclose(data[a:b], spec.null_val, atol=5e-5).all()]
        if empty:
            names = ", ".join(empty[:-1]) + (" and " if len(empty) > 1 else "") + empty[-1]
            raise UserError(f"Dataset {spec.name}: every reading of the {names} split"
                            f"{'s' if len(empty) > 1 else ''} equals the null value {spec.null_val:g}, so nothing there "
                            "could be scored. If those values are real readings, prepare with --null-value none (or "
                            "another marker).")


def _meta(spec: DatasetSpec, data: np.ndarray, lengths: Sequence[int], has_graph: bool, has_coords: bool) -> dict:
    """The dataset's `meta.json` (BasicTS reads `regular_settings`; `DatasetInfo` reads the rest)."""
    return {
        "name": spec.name,
        "domain": spec.domain,
        "frequency (minutes)": spec.step_minutes,
        "start_time": spec.start.isoformat() if spec.start else None,
        "utc_offset": spec.utc_offset,
        **({"channels": {"names": list(spec.channel_names), "layout": "node-major: series n * C + c is channel c of "
                         "node n (ids <node>@<channel>)"}} if spec.channel_names else {}),
        "time_axis": spec.time_axis,
        **({} if spec.floor == "from the data" else {"floor": spec.floor}),
        "shape": list(data.shape),  # [steps, nodes(, channels)]: the one record of the sizes
        "split_lengths": dict(zip(SPLITS, map(int, lengths))),
        "timestamps_description": ["time of day", "day of week"],
        "missing_share": missing_share(data, spec.null_val),
        "has_graph": has_graph,
        "has_coords": has_coords,
        "grid_shape": list(spec.grid_shape) if spec.grid_shape is not None else None,
        "node_ids": _distinct_ids(spec.node_ids, data.shape[1]),
        "source": spec.source,
        "regular_settings": {
            "train_val_test_ratio": [float(r) for r in spec.ratios],
            "norm_each_channel": spec.norm_each_channel,
            "rescale": spec.rescale,
            "metrics": list(spec.metrics),
            "null_val": None if spec.null_val is None else float(spec.null_val),
        },
    }


def _distinct_ids(ids: Optional[Sequence[str]], num_nodes: int) -> Optional[List[str]]:
    """The sensor ids kept in `meta.json`: one distinct id per node, else None (the nodes are then numbered)."""
    if ids is None or len(ids) != num_nodes or len(set(ids)) != num_nodes:
        return None
    return [str(i) for i in ids]


def _move_into_place(tmp: Path, target: Path, overwrite: bool) -> None:
    """Rename the written folder `tmp` to `target` (replacing it with `overwrite`); never half a dataset."""
    if overwrite and target.exists():
        backup = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-{os.getpid()}-", dir=target.parent))
        os.replace(target, backup / target.name)
        os.replace(tmp, target)
        shutil.rmtree(backup)
        return
    try:
        os.mkdir(target)  # the existence check and the claim in one step: another prepare may have won
    except FileExistsError:
        raise UserError(f"{target} was written by another run while this one prepared it; nothing was "
                        "replaced. Pass --overwrite to replace it.") from None
    os.replace(tmp, target)  # onto the empty folder this process just made


def channels_as_series(data: np.ndarray, node_ids, grid_shape, adj: Optional[np.ndarray],
                       coords: Optional[np.ndarray], names: List[str]):
    """A signal of several channels as one series per (node, channel), node-major (series `n * C + c`), so that every
    model forecasts every channel: ids `<node>@<channel>`, a grid `H x W` becomes `H x (W * C)` (each cell's channels
    side by side), the graph links each series to the same channel of the node's neighbours and to the node's other
    channels, and coordinates repeat per channel.

    Shapes:
        data: `[L, N, C]` -> `[L, N * C]`; adj: `[N, N]` -> `[N * C, N * C]`; coords: `[N, 2]` -> `[N * C, 2]`.
    """
    nodes, count = data.shape[1], data.shape[2]
    if len(names) != count:
        raise UserError(f"{count} channels, but {len(names)} channel names ({', '.join(names)}).")
    flat = data.reshape(data.shape[0], nodes * count)  # [L, N * C], series n * C + c
    ids = [f"{node}@{name}" for node in (node_ids or range(nodes)) for name in names]
    grid = (grid_shape[0], grid_shape[1] * count) if grid_shape else None
    if adj is not None:
        same_node = np.ones((count, count), dtype=np.float32) - np.eye(count, dtype=np.float32)
        adj = np.kron(adj, np.eye(count, dtype=np.float32)) + np.kron(np.eye(nodes, dtype=np.float32), same_node)
    coords = np.repeat(coords, count, axis=0) if coords is not None else None
    return flat, ids, grid, adj, coords


def write_dataset(root: os.PathLike, spec: DatasetSpec, data: np.ndarray, adj: Optional[np.ndarray] = None,
                  coords: Optional[np.ndarray] = None, overwrite: bool = False) -> Path:
    """Validate and write one dataset; returns its folder `<root>/<name>`.

    Args:
        root: Folder that holds datasets (`data.info.DATASETS_ROOT` is where BasicTS reads them).
        spec: Name, frequency, split, protocol settings and provenance.
        data: Signal, [L, N] or [L, N, C]; missing readings already equal `spec.null_val`.
        adj: Weighted or 0/1 adjacency [N, N], or None for datasets without a graph.
        coords: Node coordinates [N, 2] (latitude, longitude), or None.
        overwrite: Replace an existing dataset of the same name.
    """
    data = np.asarray(data)
    adj = None if adj is None else np.asarray(adj, dtype=np.float32)
    coords = None if coords is None else np.asarray(coords, dtype=np.float64)
    _validate(spec, data, adj, coords)
    root = Path(root)
    target = root / spec.name
    if target.exists() and not overwrite:
        raise UserError(f"{target} already exists. Pass --overwrite to replace it, or choose another --name.")
    root.mkdir(parents=True, exist_ok=True)

    num_steps = data.shape[0]
    lengths = split_lengths(num_steps, spec.ratios)
    timestamps = make_timestamps(num_steps, spec.step_minutes, spec.start)
    data = data.astype(np.float32)

    remove_stale_temporaries(root)
    tmp = Path(tempfile.mkdtemp(prefix=f".{spec.name}.tmp-{os.getpid()}-", dir=root))
    try:
        begin = 0
        for split, length in zip(SPLITS, lengths):
            np.save(tmp / f"{split}_data.npy", data[begin:begin + length])
            np.save(tmp / f"{split}_timestamps.npy", timestamps[begin:begin + length])
            begin += length
        if adj is not None:
            with open(tmp / ADJ_FILE, "wb") as f:
                pickle.dump(adj, f)
        if coords is not None:
            np.save(tmp / COORDS_FILE, coords)
        meta = _meta(spec, data, lengths, adj is not None, coords is not None)
        with open(tmp / META_FILE, "w", encoding="utf-8") as f:
            json.dump(meta, f, indent=2)
        _move_into_place(tmp, target, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def raw_files(paths) -> List[dict]:
    """`{"file": name, "sha256": ...}` of each raw file a dataset was prepared from (names only: no machine path)."""
    found = []
    for path in paths:
        if path:
            found.append({"file": Path(path).name, "sha256": file_sha256(path)})
    return found


def missing_share(data: np.ndarray, null_val: Optional[float]) -> float:
    """Share of readings equal to the missing-value marker (0 without one)."""
    return float(np.mean(data == null_val)) if null_val is not None and data.size else 0.0


def remove_stale_temporaries(root: Path) -> List[Path]:
    """Remove the temporary folders (`.NAME.tmp-PID-*`, `.NAME.old-PID-*`) of preparations whose process is gone
    (killed before it could clean up); returns what was removed."""
    removed = []
    for path in root.glob(".*.*-*-*") if root.is_dir() else []:
        parts = path.name.rsplit(".", 1)[-1].split("-")
        if len(parts) < 3 or parts[0] not in ("tmp", "old") or not parts[1].isdigit() or process_alive(int(parts[1])):
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def process_alive(pid: int) -> bool:
    """A process with this id exists (it may belong to another user)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_meta(folder: os.PathLike) -> dict:
    """The `meta.json` of a prepared dataset."""
    path = Path(folder) / META_FILE
    if not path.is_file():
        raise UserError(f"{path} does not exist: {folder} is not a prepared dataset.")
    try:
        with open(path, encoding="utf-8") as f:
            meta = json.load(f)
    except (ValueError, UnicodeDecodeError) as e:
        raise UserError(f"{path} is not valid JSON ({e}): the dataset's description was damaged. Prepare the dataset "
                        "again (python -m stvfm_plugin.data prepare ... --overwrite).") from None
    if not isinstance(meta, dict):
        raise UserError(f"{path} holds no dataset description (a JSON object). Prepare the dataset again.")
    return meta


def load_graph(folder: os.PathLike) -> Optional[np.ndarray]:
    """The adjacency `[N, N]` of a prepared dataset, or None when it has no graph."""
    path = Path(folder) / ADJ_FILE
    if not path.is_file():
        return None
    with open(path, "rb") as f:
        adj = pickle.load(f)
    if isinstance(adj, (list, tuple)):  # DCRNN-style [ids, id->index, adj]
        adj = adj[-1]
    return np.asarray(adj, dtype=np.float32)


def load_coords(folder: os.PathLike) -> Optional[np.ndarray]:
    """Node coordinates `[N, 2]` of a prepared dataset, or None."""
    path = Path(folder) / COORDS_FILE
    return np.load(path) if path.is_file() else None
