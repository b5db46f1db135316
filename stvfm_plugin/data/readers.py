"""Readers for raw spatio-temporal signals: CSV, NumPy (`.npy`/`.npz`) and HDF5 tables."""
from __future__ import annotations

import csv
import datetime as dt
import zipfile
from pathlib import Path
from typing import Optional, Sequence

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


def read_csv_matrix(path: Path, header: Optional[bool] = None) -> tuple[np.ndarray, Optional[list[str]]]:
    """A numeric CSV table, time x nodes (or nodes x nodes), with an optional header row.

    Args:
        path: CSV file.
        header: True/False, or None to detect a header (a first row with any non-numeric cell).

    Returns:
        The values as float64 `[rows, cols]` and the header cells (None without header).
    """
    path = Path(path)
    rows = csv_rows(path)
    if not rows:
        raise UserError(f"{path} is empty.")
    if header is None:
        header = not all(is_number(c) for c in rows[0] if c.strip())
    names = [c.strip() for c in rows[0]] if header else None
    body = rows[1:] if header else rows
    width = len(body[0]) if body else 0
    values = np.empty((len(body), width), dtype=np.float64)
    for i, row in enumerate(body):
        if len(row) != width:
            raise UserError(f"{path}: row {i + 1 + bool(header)} has {len(row)} cells, the first data row has {width}.")
        for j, cell in enumerate(row):
            try:
                values[i, j] = float(cell)
            except ValueError:
                raise UserError(f"{path}: non-numeric cell {cell!r} at row {i + 1 + bool(header)}, column {j + 1}. "
                                "Fix the file, or mark missing readings with a number (--null-value).") from None
    return values, names


def read_array(path: Path, key: Optional[str] = None, channels: Optional[Sequence[int]] = None) -> np.ndarray:
    """A `[L, N]` or `[L, N, C]` array from `.npy` or `.npz` (key `data` or the only key by default).

    Args:
        path: The file.
        key: Array name inside an `.npz`.
        channels: Channels to keep from a `[L, N, C]` array; a single channel gives `[L, N]`.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path} does not exist.")
    if path.suffix not in (".npy", ".npz"):
        raise UserError(f"{path}: expected a .npy or .npz file.")
    try:
        loaded = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        raise UserError(f"{path} is not a readable NumPy file ({type(e).__name__}: {str(e)[:120]}).") from None
    if isinstance(loaded, np.lib.npyio.NpzFile):
        with loaded as archive:
            keys = list(archive.keys())
            if key is None:
                key = "data" if "data" in keys else (keys[0] if len(keys) == 1 else None)
            if key not in keys:
                raise UserError(f"{path} holds arrays {keys}; choose one with --key.")
            try:
                array = archive[key]
            except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
                raise UserError(f"{path}: array {key!r} is not readable ({type(e).__name__}).") from None
    else:
        array = loaded
    if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.complexfloating):
        raise UserError(f"{path}: the array holds {array.dtype} values, not real numbers.")
    return select_channels(array, channels, str(path))


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


def read_h5(path: Path, key: Optional[str] = None) -> tuple[np.ndarray, Optional[dt.datetime], list[str]]:
    """A pandas HDF5 table (METR-LA / PEMS-BAY style): time index x sensor columns.

    Returns:
        The values `[L, N]`, the first timestamp of the index (None when it is not a date) and the
        column names (sensor ids).
    """
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path} does not exist.")
    try:
        frame = pd.read_hdf(path, key=key)
    except Exception as e:  # pandas / PyTables raise many kinds for files that are not HDF5 tables
        raise UserError(f"{path}: cannot read an HDF5 table ({type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else ''}).") from None
    start = None
    if isinstance(frame.index, pd.DatetimeIndex) and len(frame.index):
        start = frame.index[0].to_pydatetime()
    return frame.to_numpy(dtype=np.float64), start, [str(c) for c in frame.columns]
