"""Readers for raw spatio-temporal signals: CSV, NumPy (`.npy`/`.npz`), HDF5 tables and files of sliding windows."""
from __future__ import annotations

import csv
import re
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np

from ..errors import UserError


def is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def text_lines(path: Path) -> list[str]:
    """The lines of a UTF-8 text file (a byte-order mark is dropped); anything else is a `UserError`."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path} does not exist.")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise UserError(f"{path} is not a UTF-8 text file (byte {e.start}: {e.reason}); give a CSV file.") from None
    if "\0" in text:
        raise UserError(f"{path} holds NUL bytes: it is not a CSV text file.")
    return text.splitlines()


def csv_rows(path: Path) -> list[list[str]]:
    """The rows of a CSV file, blank lines dropped."""
    try:
        return [row for row in csv.reader(text_lines(path)) if row and any(cell.strip() for cell in row)]
    except csv.Error as e:
        raise UserError(f"{path}: not a readable CSV file ({e}).") from None


def first_csv_row(path: Path) -> list[str]:
    """The first non-blank row of a CSV file that has been read once already (so it decodes), cells stripped."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        for row in csv.reader(f):
            if any(cell.strip() for cell in row):
                return [cell.strip() for cell in row]
    return []


@dataclass
class RawSignal:
    """A signal as read from a file: readings, the sensors' ids and the time stamps, where the file has them."""

    values: np.ndarray = field(metadata={"help": "Readings [L, N] or [L, N, C], float64."})
    ids: Optional[List[str]] = field(default=None, metadata={"help": "Sensor ids in column order (a header)."})
    stamps: Optional[list] = field(default=None, metadata={
        "help": "One raw stamp per row (text, bytes or datetimes; `time_axis.parse_stamps` reads them)."})
    digit_stamps: bool = field(default=False, metadata={
        "help": "The stamps come from a grid file's stamp array, where compact digits (YYYYMMDDHH) are dates."})
    grid_shape: Optional[Tuple[int, int]] = field(default=None, metadata={"help": "H, W of a grid signal."})
    notes: List[str] = field(default_factory=list, metadata={"help": "What the reader made of the file, for the log."})


#: names of the stamp array beside the readings in an `.npz` / `.h5` file (ST-ResNet's family: `date`)
STAMP_KEYS = ("date", "dates", "time", "times", "timestamp", "timestamps")


def read_signal(path: Path, fmt: Optional[str] = None, key: Optional[str] = None,
                channels: Optional[Sequence[int]] = None, header: Optional[bool] = None,
                grid_axes: Optional[str] = None, known_ids: Optional[Sequence[str]] = None,
                null_hint: Optional[str] = None, grid_like: Optional[Tuple[int, int, int]] = None) -> RawSignal:
    """A signal file of any format `prepare` takes (CSV, `.npy` / `.npz`, HDF5, sliding windows), with its ids and time
    stamps.

    Args:
        path: The file, or a folder of window files (`WINDOW_FILES`).
        fmt: csv | npz | h5 (None: from the suffix).
        key: Array name in an `.npz`, or key in an `.h5`.
        channels: Channels to keep of a `[L, N, C]` signal.
        header: A CSV's first row holds sensor ids (None: detected).
        grid_axes: Axis order of a grid array (`GRID_AXES`).
        grid_like: `H, W, C` of the grid the reader expects (a run's): tells the axis order of a 4-axis array whose
            shape alone does not.
        known_ids: Sensor ids the caller expects: a numeric first CSV row that names at least half of them is a
            header (so a header of numeric ids with one typo is refused by id, never read as readings).
        null_hint: How a message about a non-numeric CSV cell says to mark a missing reading (None: prepare's way).
    """
    path = Path(path)
    if path.is_dir():
        return read_window_files(path, channels)
    fmt = fmt or {".csv": "csv", ".npz": "npz", ".npy": "npz", ".h5": "h5", ".hdf5": "h5"}.get(path.suffix.lower())
    if fmt == "csv":
        hint = {"null_hint": null_hint} if null_hint else {}
        signal = read_csv_signal(path, header=header, known_ids=known_ids, **hint)
        signal.values = select_channels(signal.values, channels, str(path))
        return signal
    if fmt == "npz":
        return read_array_signal(path, key, channels, grid_axes, grid_like)
    if fmt == "h5":
        return read_h5(path, key, channels, grid_axes, grid_like)
    raise UserError(f"{path}: unknown signal format; use --format csv|npz|h5.")


def read_signals(paths: Sequence[Path], fmt: Optional[str] = None, key: Optional[str] = None,
                 channels: Optional[Sequence[int]] = None, header: Optional[bool] = None,
                 grid_axes: Optional[str] = None) -> RawSignal:
    """Files of one source as one signal, in their order (`read_signal` each): the same sensors, grid and channels in
    each, and stamps in all or in none (the time axis checks them as one)."""
    parts = [read_signal(path, fmt, key, channels, header, grid_axes) for path in paths]
    if len(parts) == 1:
        return parts[0]
    first, names = parts[0], ", ".join(Path(p).name for p in paths)

    def held(part: RawSignal) -> str:  # what a file holds each step
        shape = part.values.shape
        where = (f"cells of a {part.grid_shape[0]} x {part.grid_shape[1]} grid" if part.grid_shape else "sensors")
        return f"{shape[1]} {where}" + (f", {shape[2]} channels" if len(shape) > 2 else "")

    for path, part in zip(paths[1:], parts[1:]):
        if part.values.shape[1:] != first.values.shape[1:] or part.grid_shape != first.grid_shape:
            raise UserError(f"{names}: {Path(path).name} holds {held(part)}, {Path(paths[0]).name} {held(first)}: give "
                            "files of the same sensors and channels.")
        if part.ids != first.ids:
            raise UserError(f"{names}: {Path(path).name} names its sensors otherwise than {Path(paths[0]).name}: give "
                            "files of the same sensors, in the same order.")
    if len({p.stamps is None for p in parts}) > 1:
        raise UserError(f"{names}: some have time stamps and some have none; give files that all have them, or none.")
    return RawSignal(np.concatenate([p.values for p in parts]), first.ids,
                     None if first.stamps is None else [s for p in parts for s in p.stamps],
                     digit_stamps=first.digit_stamps, grid_shape=first.grid_shape,
                     notes=[n for p in parts for n in p.notes])


def read_csv_matrix(path: Path, header: Optional[bool] = None) -> tuple[np.ndarray, Optional[list[str]]]:
    """A numeric CSV table, time x nodes (or nodes x nodes), with an optional header row.

    Args:
        path: CSV file.
        header: True/False, or None to detect a header (a first row with any non-numeric cell).

    Returns:
        The values as float64 `[rows, cols]` and the header cells (None without header).
    """
    signal = read_csv_signal(path, header, stamps=False, null_hint="give numbers only")
    return signal.values, signal.ids


def read_csv_signal(path: Path, header: Optional[bool] = None, stamps: bool = True,
                    null_hint: str = "leave a missing reading's cell empty and pass --nan-as-missing",
                    known_ids: Optional[Sequence[str]] = None) -> RawSignal:
    """A CSV signal: rows of readings, an optional header row of sensor ids, and an optional leading column of time
    stamps (as pandas' `to_csv` writes a time-indexed frame).

    Args:
        path: CSV file.
        header: True/False, or None to detect a header (a first row with a non-numeric cell; a numeric first row
            of sensor ids is read as readings: `first_row_looks_like_ids` tells the caller).
        stamps: Detect a leading time-stamp column (a first column whose cells read as dates).
        null_hint: How the message about a non-numeric cell says to mark missing readings.
        known_ids: Sensor ids the caller expects (`read_signal`).
    """
    from .time_axis import looks_like_stamp

    path = Path(path)
    rows = csv_rows(path)
    if not rows:
        raise UserError(f"{path} is empty.")
    timed = stamps and any(looks_like_stamp(r[0]) for r in rows[:2] if r) and all(
        r and looks_like_stamp(r[0]) for r in rows[1:3])
    skip = int(timed)
    if header is None:
        header = not all(is_number(c) for c in rows[0][skip:] if c.strip()) or (timed and not looks_like_stamp(rows[0][0]))
        if not header and known_ids:
            first = [c.strip() for c in rows[0][skip:]]
            header = len(set(first) & set(map(str, known_ids))) >= len(first) / 2
    names = [c.strip() for c in rows[0][skip:]] if header else None
    body = rows[1:] if header else rows
    width = len(body[0]) - skip if body else 0
    values = np.empty((len(body), width), dtype=np.float64)
    for i, row in enumerate(body):
        if len(row) - skip != width:
            raise UserError(f"{path}: row {i + 1 + bool(header)} has {len(row) - skip} cells, the first data row has "
                            f"{width}.")
        for j, cell in enumerate(row[skip:]):
            try:
                values[i, j] = float(cell) if cell.strip() else np.nan  # an empty cell: no reading
            except ValueError:
                if j + skip == 0 and stamps and re.search(r"\d[/.:-]\d", cell):
                    raise UserError(f"{path}: its first column holds {cell.strip()!r} (row {i + 1 + bool(header)}), "
                                    "which looks like a time stamp but is not an ISO date/time; write the stamps as "
                                    "2024-01-31 08:00 (year-month-day hour:minute).") from None
                raise UserError(f"{path}: non-numeric cell {cell!r} at row {i + 1 + bool(header)}, column "
                                f"{j + 1 + skip}. Fix the file, or {null_hint}.") from None
    return RawSignal(values, names, [row[0] for row in body] if timed else None)


def first_row_looks_like_ids(values: np.ndarray) -> bool:
    """A numeric first row `values[0]` that is sensor ids rather than readings: distinct whole numbers, at least half
    of them further outside the range their column takes in the rows below than that range is wide (`los_speed.csv`'s
    header, ids near 773,869 above speeds of 0-70, read as readings)."""
    if values.ndim != 2 or len(values) < 3 or not values.shape[1]:
        return False
    first = values[0]
    if not np.isfinite(first).all() or (first != np.round(first)).any() or len(np.unique(first)) != len(first):
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-empty column
        low, high = np.nanmin(values[1:], axis=0), np.nanmax(values[1:], axis=0)
    width = high - low
    return bool(((first < low - width) | (first > high + width)).mean() >= 0.5)


def read_array(path: Path, key: Optional[str] = None, channels: Optional[Sequence[int]] = None) -> np.ndarray:
    """A `[L, N]` or `[L, N, C]` array from `.npy` or `.npz` (key `data` or the only key by default).

    Args:
        path: The file.
        key: Array name inside an `.npz`.
        channels: Channels to keep from a `[L, N, C]` array; a single channel gives `[L, N]`.
    """
    return read_array_signal(path, key, channels).values


def read_array_signal(path: Path, key: Optional[str] = None, channels: Optional[Sequence[int]] = None,
                      grid_axes: Optional[str] = None, grid_like: Optional[Tuple[int, int, int]] = None) -> RawSignal:
    """An `.npy` / `.npz` signal: the readings (key `data`, or the only array besides a stamp array) and, in an
    `.npz`, the stamp array beside them (`STAMP_KEYS`); grid arrays become one node per cell (`grid_signal`)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path} does not exist.")
    if path.suffix not in (".npy", ".npz"):
        raise UserError(f"{path}: expected a .npy or .npz file.")
    try:
        loaded = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        raise UserError(f"{path} is not a readable NumPy file ({type(e).__name__}: {str(e)[:120]}).") from None
    stamps = None
    if isinstance(loaded, np.lib.npyio.NpzFile):
        with loaded as archive:
            keys = list(archive.keys())
            if key is None and set(WINDOW_KEYS) <= set(keys):
                return _window_signal([path], channels)
            stamp_key = next((k for k in keys if k.lower() in STAMP_KEYS and k != key), None)
            if key is None:
                rest = [k for k in keys if k != stamp_key]
                key = "data" if "data" in keys else (rest[0] if len(rest) == 1 else None)
            if key not in keys:
                raise UserError(f"{path} holds arrays {keys}; choose one with --key.")
            try:
                array = archive[key]
                stamps = list(archive[stamp_key]) if stamp_key else None
            except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
                raise UserError(f"{path}: array {key!r} is not readable ({type(e).__name__}).") from None
    else:
        array = loaded
    return _numeric_signal(array, stamps, channels, grid_axes, str(path), grid_like)


def _numeric_signal(array: np.ndarray, stamps: Optional[list], channels: Optional[Sequence[int]],
                    grid_axes: Optional[str], what: str, grid_like: Optional[Tuple[int, int, int]] = None) -> RawSignal:
    if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.complexfloating):
        raise UserError(f"{what}: the array holds {array.dtype} values, not real numbers.")
    ids, grid = None, None
    if array.ndim >= 4 or grid_axes:
        array, grid, ids = grid_signal(array, grid_axes, what, grid_like)
        channels = range(array.shape[2]) if channels is None else channels  # a grid keeps every channel by default
    return RawSignal(select_channels(array.astype(np.float64, copy=False), channels, what), ids, stamps,
                     digit_stamps=True, grid_shape=grid)


#: the arrays of a file of sliding windows (DCRNN's `generate_training_data.py` and ST-SSL's `train.npz` / `val.npz` /
#: `test.npz`): inputs `x` [samples, steps, nodes(, channels)], targets `y`, and each step's offset from the window's
#: "now" (`x_offsets`, `y_offsets`; ST-SSL's inputs skip steps: the last hours and the same hours of earlier days)
WINDOW_KEYS = ("x", "y", "x_offsets", "y_offsets")
#: a folder of window files: the splits in time order
WINDOW_FILES = ("train.npz", "val.npz", "test.npz")


def read_window_files(folder: Path, channels: Optional[Sequence[int]] = None) -> RawSignal:
    """A folder holding `train.npz`, `val.npz` and `test.npz` of sliding windows, read back as the one series they
    slide over (`windows_as_series`)."""
    files = [folder / name for name in WINDOW_FILES]
    absent = [f.name for f in files if not f.is_file()]
    if absent:
        raise UserError(f"{folder} is a folder: give a signal file, or a folder of sliding windows holding "
                        f"{', '.join(WINDOW_FILES)} ({', '.join(absent)} not there).")
    return _window_signal(files, channels)


def _window_signal(files: Sequence[Path], channels: Optional[Sequence[int]]) -> RawSignal:
    parts = []
    for path in files:
        try:
            with np.load(path, allow_pickle=False) as archive:
                if not set(WINDOW_KEYS) <= set(archive.keys()):
                    raise UserError(f"{path} holds arrays {list(archive.keys())}, not sliding windows "
                                    f"({', '.join(WINDOW_KEYS)}).")
                parts.append({k: archive[k] for k in WINDOW_KEYS})
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
            raise UserError(f"{path} is not a readable NumPy file ({type(e).__name__}: {str(e)[:120]}).") from None
    what = ", ".join(map(str, files))
    offsets = [np.concatenate([np.ravel(p["x_offsets"]), np.ravel(p["y_offsets"])]) for p in parts]
    if any(not np.array_equal(o, offsets[0]) for o in offsets[1:]):
        raise UserError(f"{what}: the files' windows take different steps (x_offsets / y_offsets differ); give files "
                        "cut from one series with one window.")
    windows = [np.concatenate([p["x"], p["y"]], axis=1) for p in parts]  # [S_i, Tx + Ty, N(, C)] each
    if any(w.shape[2:] != windows[0].shape[2:] for w in windows):
        raise UserError(f"{what}: the files' windows hold different nodes or channels "
                        f"({', '.join(str(list(w.shape[2:])) for w in windows)}).")
    series = windows_as_series(np.concatenate(windows), offsets[0], what)
    counts = " + ".join(f"{len(w):,}" for w in windows)
    note = (f"{', '.join(p.name for p in files)}: {counts} sliding windows of {len(offsets[0])} steps (offsets {int(offsets[0].min())} to "
            f"{int(offsets[0].max())}), read back as the one series they slide over: {len(series):,} steps of "
            f"{series.shape[1]} nodes" + (f", {series.shape[2]} channels" if series.ndim == 3 else "") +
            "; the file has no time stamps and no grid: give --step-minutes (and --start), and --grid HxW if the "
            "nodes are the cells of a grid in row-major order")
    if series.ndim == 3 and channels is None:
        note += (f"; channel 0 of {series.shape[2]} kept (--channels 0,1,... keeps more: DCRNN's files hold the time of "
                 "day as channel 1, ST-SSL's the second flow)")
    values = select_channels(series.astype(np.float64, copy=False), channels, what)
    return RawSignal(values, notes=[note])


def windows_as_series(windows: np.ndarray, offsets: np.ndarray, what: str) -> np.ndarray:
    """The series that windows cut one step apart slide over: each window's step `j` is the series at the window's
    "now" plus `offsets[j]`, and window `s + 1`'s "now" is window `s`'s plus one step. Every step the windows hold twice
    must agree (so the windows are one step apart, in order, and the files follow each other), and every step of the
    series must be held.

    Shapes:
        windows [S, J, N(, C)], offsets [J] -> [S - 1 + span, N(, C)], span = max(offsets) - min(offsets) + 1
    """
    if not np.all(np.isfinite(offsets)) or not np.all(offsets == np.round(offsets)):
        raise UserError(f"{what}: the offsets are not whole numbers of steps.")
    offsets = offsets.astype(np.int64)
    if len(offsets) != windows.shape[1] or len(np.unique(offsets)) != len(offsets):
        raise UserError(f"{what}: {windows.shape[1]} steps a window but {len(offsets)} offsets, "
                        f"{len(np.unique(offsets))} distinct; the offsets must name each step once.")
    if not np.isin(offsets + 1, offsets).any():
        raise UserError(f"{what}: no two steps of a window are one step apart (offsets "
                        f"{', '.join(map(str, offsets))}), so nothing shows that the windows are one step apart.")
    first = int(offsets.min())
    series = np.zeros((len(windows) - 1 + int(offsets.max()) - first + 1, *windows.shape[2:]), dtype=windows.dtype)
    held = np.zeros(len(series), dtype=bool)
    starts = np.arange(len(windows))
    for j, offset in enumerate(offsets):
        at = starts + offset - first  # [S]: the series step of each window's step j
        seen = held[at]
        old, new = series[at[seen]], windows[seen, j]
        same = old == new
        if np.issubdtype(windows.dtype, np.floating):
            same |= np.isnan(old) & np.isnan(new)  # a missing reading, missing in both
        differ = ~same
        if differ.any():
            window = int(np.flatnonzero(seen)[np.flatnonzero(differ.reshape(len(new), -1).any(axis=1))[0]])
            raise UserError(f"{what}: window {window:,} (offset {offset}) and another window disagree about step "
                            f"{int(at[window]):,} of the series: these are not windows one step apart, in order, of one "
                            "series (or the files do not follow each other).")
        series[at] = windows[:, j]
        held[at] = True
    if not held.all():
        raise UserError(f"{what}: no window holds step {int(np.flatnonzero(~held)[0]):,} of the series they slide over; "
                        "give more windows.")
    return series


def parse_grid(text: str) -> tuple[int, int]:
    """`--grid 16x8` -> (16, 8): rows x columns of a grid, each at least 1."""
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise UserError(f"--grid {text!r}: give rows x columns, e.g. 16x8.") from None
    if height < 1 or width < 1:
        raise UserError(f"--grid {text}: give at least one row and one column.")
    return height, width


#: axis orders of grid arrays (`--grid-axes`): time, channel, grid row (H), grid column (W)
GRID_AXES = ("THW", "TCHW", "THWC")


def grid_signal(array: np.ndarray, axes: Optional[str], what: str, like: Optional[Tuple[int, int, int]] = None,
                ) -> tuple[np.ndarray, Tuple[int, int], List[str]]:
    """A grid array `[T, H, W]`, `[T, C, H, W]` (ST-ResNet's family) or `[T, H, W, C]` (STDN's) as one node per cell,
    numbered row-major: returns `[T, H*W, C]`, `(H, W)` and the cells' ids `r<row>c<column>` (from 0).

    `axes` states the order (`GRID_AXES`); None detects a 4-D one where the shape tells (a channel axis of at most 4
    next to grid axes longer than 4), or where the order that gives the expected grid `like` (`H, W, C`) is one, and
    refuses where neither does."""
    if axes is not None and axes.upper() not in GRID_AXES:
        raise UserError(f"--grid-axes {axes!r}: choose one of {', '.join(GRID_AXES)} (T time, C channel, H grid row, "
                        "W grid column).")
    stated = axes.upper() if axes else None
    shape = list(array.shape)
    if array.ndim not in (3, 4):
        raise UserError(f"{what}: shape {shape} fits no layout: give [time, nodes], [time, nodes, channels] or a grid "
                        "[time, row, column] (--grid-axes THW), [time, channel, row, column] or [time, row, column, "
                        "channel].")
    axes = stated
    if array.ndim == 4:
        first, last = shape[1] <= 4 < min(shape[2:]), shape[3] <= 4 < min(shape[1:3])
        if first == last and like is not None:  # the shape alone cannot tell: the order that gives the expected grid
            fits = [tuple(like) == (shape[2], shape[3], shape[1]), tuple(like) == (shape[1], shape[2], shape[3])]
            first, last = (fits[0], fits[1]) if fits[0] != fits[1] else (first, last)
        if first == last and stated is None:
            raise UserError(f"{what}: a grid array of shape {shape} could be [time, channel, row, column] or [time, "
                            "row, column, channel]: say which with --grid-axes TCHW or --grid-axes THWC.")
        detected = None if first == last else ("TCHW" if first else "THWC")
        if stated in ("TCHW", "THWC") and detected and stated != detected:
            channels = shape[1] if detected == "TCHW" else shape[3]
            raise UserError(f"{what}: --grid-axes {stated} disagrees with the array: its shape {shape} reads as "
                            f"{detected} ({channels} channels of a {' x '.join(map(str, shape[2:] if first else shape[1:3]))} "
                            f"grid; a channel axis is at most 4 long). Drop --grid-axes, or check the file.")
        axes = axes or detected
    if axes is None or array.ndim != len(axes):
        raise UserError(f"{what}: shape {shape} does not fit --grid-axes {axes}; give {', '.join(GRID_AXES)} for an "
                        "array of as many axes (T time, C channel, H grid row, W grid column).")
    if axes == "THW":
        array = array[..., None]
    elif axes == "TCHW":
        array = np.moveaxis(array, 1, -1)
    height, width = array.shape[1:3]
    cells = array.reshape(array.shape[0], height * width, array.shape[3])  # [T, H*W, C], row-major cells
    return cells, (int(height), int(width)), cell_ids(height, width)


def cell_ids(height: int, width: int) -> List[str]:
    """The ids of a grid's cells, row-major: `r<row>c<column>`, from 0."""
    return [f"r{r}c{c}" for r in range(height) for c in range(width)]


def select_channels(array: np.ndarray, channels: Optional[Sequence[int]], what: str) -> np.ndarray:
    """Keep `channels` of a `[L, N, C]` array; `[L, N]` arrays pass through (only channel 0 may be asked of them)."""
    if array.ndim == 2:
        if channels is not None and list(channels) != [0]:
            raise UserError(f"{what} has no channel axis ([time, nodes], shape {list(array.shape)}); cannot select "
                            f"channels {list(channels)}. Drop --channels.")
        return array
    if array.ndim != 3:
        raise UserError(f"{what}: expected [time, nodes] or [time, nodes, channels]; got shape {list(array.shape)}.")
    channels = [0] if channels is None else list(channels)
    if max(channels) >= array.shape[2] or min(channels) < 0:
        raise UserError(f"{what} has {array.shape[2]} channels; cannot select {channels}.")
    array = array[:, :, channels]
    return array[:, :, 0] if len(channels) == 1 else array


def read_h5(path: Path, key: Optional[str] = None, channels: Optional[Sequence[int]] = None,
            grid_axes: Optional[str] = None, grid_like: Optional[Tuple[int, int, int]] = None) -> RawSignal:
    """An HDF5 signal: a pandas table (METR-LA / PEMS-BAY style: time index x sensor columns; every index stamp is
    kept), or plain arrays (ST-ResNet's family: `data` and a stamp array such as `date`; grids become one node per
    cell)."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path} does not exist.")
    try:
        with h5py.File(path, "r") as f:
            arrays = [k for k in f.keys() if isinstance(f[k], h5py.Dataset)]
            name = key if key in arrays else ("data" if key is None and "data" in arrays else None)
            if name is not None:
                stamp_key = next((k for k in arrays if k.lower() in STAMP_KEYS and k != name), None)
                return _numeric_signal(f[name][()], list(f[stamp_key][()]) if stamp_key else None, channels, grid_axes,
                                       str(path), grid_like)
    except OSError:
        pass  # not HDF5 at all: pandas says so below
    return _pandas_h5(path, key, channels)


def _pandas_h5(path: Path, key: Optional[str], channels: Optional[Sequence[int]]) -> RawSignal:
    import pandas as pd

    try:
        frame = pd.read_hdf(path, key=key)
    except Exception as e:  # pandas / PyTables raise many kinds for files that are not HDF5 tables
        raise UserError(f"{path}: cannot read an HDF5 table ({type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else ''}).") from None
    stamps = list(frame.index.to_pydatetime()) if isinstance(frame.index, pd.DatetimeIndex) else None
    return RawSignal(select_channels(frame.to_numpy(dtype=np.float64), channels, str(path)),
                     [str(c) for c in frame.columns], stamps)
