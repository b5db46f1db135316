"""The time axis of a signal: its stamps read from wherever the input has them, and checked in one place.

`prepare` and `forecast --data` both go through `regular_axis`. A time axis is accepted when its stamps are sorted,
one step apart, never repeated and without gaps; anything else is refused with one line, unless an explicit option
handles it, and what was done is counted (`AxisReport`, kept in `meta.json` under `time_axis`):

- `--repeats first|last|mean|sum|max`: rows that share a stamp are combined into one by that rule;
- `--fill-gaps`: the missing steps are inserted as missing readings (the null value, so masked, never invented);
- `--sort-time`: rows out of order are sorted by their stamp.

A step that contradicts `--step-minutes` is refused. Time zones follow one rule: stamps that carry a UTC offset are
converted to the offset of the first stamp and kept as wall-clock times of that offset (the offset is recorded);
stamps without one are the data's local clock. Naive and offset stamps are never mixed, and nothing downstream
sees an offset (so nothing can crash on one later).
"""
from __future__ import annotations

import datetime as dt
import re
import warnings
from dataclasses import dataclass, field
from typing import List, Optional, Sequence

import numpy as np

from ..errors import UserError
from .info import MINUTES_PER_DAY

#: how rows that share a stamp can be combined (`--repeats`)
REPEAT_RULES = ("first", "last", "mean", "sum", "max")
#: the latest and earliest time a stamp may have: the forecast adds steps after it, so keep a margin to year 9999
LATEST, EARLIEST = dt.datetime(9000, 1, 1), dt.datetime(1000, 1, 1)
#: compact digit stamps of grid files (`date` arrays of ST-ResNet's family): YYYYMMDD, YYYYMMDDHH, YYYYMMDDHHMM
_DIGITS = {8: "%Y%m%d", 10: "%Y%m%d%H", 12: "%Y%m%d%H%M", 14: "%Y%m%d%H%M%S"}
#: a text cell that reads as a stamp in a CSV: starts with a date (a plain number never does)
_DATE_LIKE = re.compile(r"^\s*\d{4}-\d{1,2}-\d{1,2}")


def parse_stamp(value, what: str, digits: bool = False) -> dt.datetime:
    """One time stamp: ISO text (`2024-01-01T00:05`, `2024-01-01 00:05:00+01:00`), a datetime, a numpy datetime64,
    or (`digits`, the stamp arrays of grid files) compact digits such as `2014010100` (YYYYMMDDHH)."""
    if isinstance(value, (bytes, np.bytes_)):
        value = value.decode("ascii", "replace")
    if isinstance(value, np.datetime64):
        value = str(np.datetime_as_string(value, unit="s"))
    if isinstance(value, dt.datetime):
        stamp = value
    else:
        text = str(value).strip()
        stamp = None
        if digits and text.isdigit() and len(text) in _DIGITS:
            try:
                stamp = dt.datetime.strptime(text, _DIGITS[len(text)])
            except ValueError:
                stamp = None
        if stamp is None:
            try:
                stamp = dt.datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
            except ValueError:
                raise UserError(f"{what}: {text!r} is not a date/time such as 2024-01-01T00:05"
                                f"{' or 2024010100 (YYYYMMDDHH)' if digits else ''}.") from None
    naive = stamp.replace(tzinfo=None)
    if not EARLIEST <= naive <= LATEST:
        raise UserError(f"{what}: {stamp.isoformat(sep=' ')} is outside the years {EARLIEST.year}-{LATEST.year} that "
                        "time stamps may take here.")
    return stamp


def looks_like_stamp(text: str) -> bool:
    """A CSV cell that is a time stamp (a date first), not a reading."""
    if not _DATE_LIKE.match(text):
        return False
    try:
        parse_stamp(text, "")
    except UserError:
        return False
    return True


def parse_stamps(values: Sequence, what: str, digits: bool = False, step_minutes: Optional[int] = None,
                 rule: Optional[str] = None) -> tuple[List[dt.datetime], Optional[str]]:
    """Stamps as naive wall-clock times, and the UTC offset they were given in (`+01:00`; None for naive stamps).

    Offset stamps are converted to the offset of the first one (the module's rule); naive and offset stamps mixed
    are refused. `digits`, `step_minutes` and `rule`: as `read_stamps`."""
    return to_wall_clock(read_stamps(values, what, digits, step_minutes, rule), what)


#: how ten digits of a grid file's stamp array read (`--digit-stamps`): `hours`, YYYYMMDDHH with hours 00 to 23
#: (TaxiNYC's STREED-Net files), or `slots`, YYYYMMDD and the slot of the day from 01 to T, slot 01 starting at
#: midnight (ST-ResNet's TaxiBJ, 48 half hours a day, and BikeNYC, 24 hours)
DIGIT_RULES = ("hours", "slots")


def read_stamps(values: Sequence, what: str, digits: bool = False, step_minutes: Optional[int] = None,
                rule: Optional[str] = None) -> List[dt.datetime]:
    """One stamp per value (`parse_stamp`). With `digits` (a grid file's stamp array), ten-digit stamps read by `rule`
    (`DIGIT_RULES`; None: by the stamps themselves, `digit_rule`); `step_minutes` sets the slots of a day."""
    texts = ten_digit_stamps(values) if digits else None
    if texts and (rule or digit_rule(texts, what, step_minutes)) == "slots":
        return slot_stamps(texts, what, step_minutes)
    return [parse_stamp(v, f"{what}, stamp {i + 1}", digits) for i, v in enumerate(values)]


def ten_digit_stamps(values: Sequence) -> Optional[List[str]]:
    """The stamps as text when every one is ten digits (YYYYMMDDHH or ST-ResNet's YYYYMMDD + slot), else None."""
    texts = [(v.decode("ascii", "replace") if isinstance(v, (bytes, np.bytes_)) else str(v)).strip() for v in values]
    return texts if texts and all(len(t) == 10 and t.isdigit() for t in texts) else None


def digit_rule(texts: Sequence[str], what: str, step_minutes: Optional[int] = None) -> str:
    """`hours` or `slots` (`DIGIT_RULES`) for ten-digit stamps, from their last two digits: a 00 is an hour, a value
    above 23 (or a step under an hour) is a slot; 01 to 23 alone could be either, and is refused."""
    last = [int(t[8:]) for t in texts]
    low, high = min(last), max(last)
    if low == 0:
        return "hours"
    if high > 23 or (step_minutes is not None and step_minutes < 60):
        return "slots"
    raise UserError(f"{what}: its stamps end in {low:02d} to {high:02d}, never 00 nor above 23: hours of the day "
                    "(YYYYMMDDHH) that never reach midnight, or ST-ResNet's slots of the day (YYYYMMDD and 01 to T, slot "
                    "01 at midnight) that never reach the last one. Say which with --digit-stamps hours or "
                    "--digit-stamps slots.")


def slot_stamps(texts: Sequence[str], what: str, step_minutes: Optional[int] = None) -> List[dt.datetime]:
    """ST-ResNet's stamps, YYYYMMDD and the slot of the day (01 to T, slot 01 at midnight), as times: T a day from
    `step_minutes` (else the highest slot found), each slot `1440 / T` minutes."""
    per_day = MINUTES_PER_DAY // step_minutes if step_minutes else max(int(t[8:]) for t in texts)
    if MINUTES_PER_DAY % per_day or (step_minutes and MINUTES_PER_DAY % step_minutes):
        raise UserError(f"{what}: slots of the day up to {per_day} are no whole number of minutes each; give "
                        "--step-minutes, the minutes of one slot (e.g. 30 for 48 a day).")
    minutes = MINUTES_PER_DAY // per_day
    stamps = []
    for i, text in enumerate(texts):
        slot = int(text[8:])
        if not 1 <= slot <= per_day:
            raise UserError(f"{what}, stamp {i + 1}: {text!r} has slot {slot}, outside the day's 01 to {per_day:02d} "
                            f"slots of {minutes} minutes.")
        try:
            day = dt.datetime.strptime(text[:8], "%Y%m%d")
        except ValueError:
            raise UserError(f"{what}, stamp {i + 1}: {text!r} is not a date and slot (YYYYMMDD and 01 to "
                            f"{per_day:02d}).") from None
        stamps.append(day + dt.timedelta(minutes=(slot - 1) * minutes))
    return stamps


def to_wall_clock(stamps: Sequence[dt.datetime], what: str, offset: Optional[dt.timedelta] = None,
                  ) -> tuple[List[dt.datetime], Optional[str]]:
    """The module's time-zone rule: offset stamps converted to `offset` (default: the first stamp's), then naive."""
    aware = [s.tzinfo is not None and s.utcoffset() is not None for s in stamps]
    if not any(aware):
        return list(stamps), None
    if not all(aware):
        i = aware.index(not aware[0])
        raise UserError(f"{what}: stamp {i + 1} ({stamps[i].isoformat(sep=' ')}) "
                        f"{'has no' if aware[0] else 'has a'} UTC offset and stamp 1 ({stamps[0].isoformat(sep=' ')}) "
                        f"{'has one' if aware[0] else 'has none'}: give every stamp with an offset, or none.")
    offset = stamps[0].utcoffset() if offset is None else offset
    zone = dt.timezone(offset)
    return [s.astimezone(zone).replace(tzinfo=None) for s in stamps], format_offset(offset)


def format_offset(offset: dt.timedelta) -> str:
    """`+01:00` / `-05:30` for a UTC offset."""
    minutes = int(offset.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def parse_offset(text: Optional[str]) -> Optional[dt.timedelta]:
    """The inverse of `format_offset` (None stays None)."""
    if not text:
        return None
    sign = -1 if text.startswith("-") else 1
    hours, minutes = text.lstrip("+-").split(":")
    return sign * dt.timedelta(hours=int(hours), minutes=int(minutes))


@dataclass
class AxisReport:
    """What was done to make a time axis regular: counted, for the log and `meta.json`."""

    rows: int = field(metadata={"help": "Rows the input had."})
    step_minutes: int = field(metadata={"help": "The step of the axis."})
    utc_offset: Optional[str] = field(default=None, metadata={
        "help": "The UTC offset the stamps were converted to (None: naive stamps, the data's local clock)."})
    sorted_rows: int = field(default=0, metadata={"help": "Rows that were out of order and were sorted (--sort-time)."})
    repeated_stamps: int = field(default=0, metadata={"help": "Stamps that appeared on more than one row."})
    repeated_rows: int = field(default=0, metadata={"help": "Rows merged into others by the repeat rule."})
    repeat_rule: Optional[str] = field(default=None, metadata={"help": "How repeated rows were combined."})
    gaps: int = field(default=0, metadata={"help": "Gaps (runs of missing steps) filled with the null value."})
    filled_steps: int = field(default=0, metadata={"help": "Steps inserted as missing readings (--fill-gaps)."})
    longest_gap: int = field(default=0, metadata={"help": "Steps of the longest gap filled."})

    def to_meta(self) -> dict:
        return {k: v for k, v in self.__dict__.items()}

    def lines(self) -> List[str]:
        """One log line per thing that was done (empty when the stamps were regular as given)."""
        done = []
        if self.utc_offset:
            done.append(f"time stamps with UTC offsets: kept as wall-clock times at UTC{self.utc_offset}")
        if self.sorted_rows:
            done.append(f"{self.sorted_rows} rows out of time order: sorted (--sort-time)")
        if self.repeated_stamps:
            done.append(f"{_count(self.repeated_stamps, 'time stamp')} on more than one row "
                        f"({_count(self.repeated_rows, 'extra row')}): combined by their {self.repeat_rule} "
                        f"(--repeats {self.repeat_rule})")
        if self.filled_steps:
            done.append(f"{_count(self.gaps, 'gap')} in the time stamps, {_count(self.filled_steps, 'step')} in all "
                        f"(longest {self.longest_gap}): filled as missing readings, masked in the loss and metrics "
                        "(--fill-gaps)")
        return done


def _combine(values: np.ndarray, rule: str, null_val: Optional[float]) -> np.ndarray:
    """Rows `[k, ...]` that share a stamp -> one row, by `rule`; missing readings (NaN or the null value) are left
    out of the combination, and a cell missing in every row stays missing."""
    if rule == "first":
        return values[0]
    if rule == "last":
        return values[-1]
    missing = ~np.isfinite(values) | (values == null_val if null_val is not None else False)
    kept = np.where(missing, np.nan, values)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN cells: kept as missing below
        out = {"mean": np.nanmean, "sum": np.nansum, "max": np.nanmax}[rule](kept, axis=0)
    none = missing.all(axis=0)
    return np.where(none, values[0], out)


def regular_axis(stamps: Sequence[dt.datetime], data: np.ndarray, what: str, step_minutes: Optional[int] = None,
                 null_val: Optional[float] = None, repeats: Optional[str] = None, fill_gaps: bool = False,
                 sort: bool = False, utc_offset: Optional[str] = None, step_option: Optional[str] = "--step-minutes",
                 ) -> tuple[np.ndarray, dt.datetime, AxisReport]:
    """Check a signal's stamps and make its rows one per step: returns the rows, the first stamp and what was done.

    Args:
        stamps: One naive stamp per row of `data` (`parse_stamps`).
        data: Readings `[L, ...]`, one row per stamp; missing readings as NaN or `null_val`.
        what: The input's name, to start each message.
        step_minutes: The step the stamps must have (None: the most common difference between them).
        null_val: The missing-reading marker that fills gaps (None: NaN, for inputs checked before their null value
            is applied).
        repeats: A `REPEAT_RULES` rule for rows that share a stamp; None refuses them.
        fill_gaps: Insert missing steps as missing readings; False refuses gaps.
        sort: Sort rows out of order; False refuses them.
        utc_offset: The offset the stamps were converted to, for the report.
        step_option: The option that sets the step, named by the message that refuses a contradicting step (None:
            the step is a trained run's, which no option changes).

    Shapes:
        data: `[L, ...]` -> `[L', ...]`, `L'` the steps from the first to the last stamp.
    """
    data = np.asarray(data)
    if len(stamps) != len(data):
        raise UserError(f"{what}: {len(stamps)} time stamps for {len(data)} rows of readings.")
    if not len(stamps):
        raise UserError(f"{what} holds no rows.")
    report = AxisReport(rows=len(stamps), step_minutes=0, utc_offset=utc_offset)
    order = np.arange(len(stamps))
    times = np.array([np.datetime64(s, "s") for s in stamps])
    backwards = np.flatnonzero(times[1:] < times[:-1])
    if len(backwards):
        i = int(backwards[0]) + 1
        if not sort:
            newest_first = len(backwards) == len(stamps) - 1
            raise UserError(f"{what}: the time stamps are {'newest first' if newest_first else 'out of order'} (row "
                            f"{i + 1}, {stamps[i].isoformat(sep=' ')}, comes after {stamps[i - 1].isoformat(sep=' ')})"
                            "; sort the rows oldest first, or pass --sort-time to sort them.")
        order = np.argsort(times, kind="stable")
        report.sorted_rows = int((order != np.arange(len(order))).sum())
    times, data = times[order], data[order]
    unique, first_row, counts = np.unique(times, return_index=True, return_counts=True)
    if (counts > 1).any():
        twice = unique[counts > 1]
        if repeats is None:
            rows = [int(order[i]) + 1 for i in np.flatnonzero(times == twice[0])]
            raise UserError(f"{what}: {_count(len(twice), 'time stamp')} on more than one row (first "
                            f"{_show(twice[0])}, rows {', '.join(map(str, rows[:3]))}); keep one row per stamp, or pass "
                            f"--repeats {'|'.join(REPEAT_RULES)} to combine them by that rule.")
        if repeats not in REPEAT_RULES:
            raise UserError(f"--repeats {repeats!r}: choose one of {', '.join(REPEAT_RULES)}.")
        combined = data[first_row].astype(np.float64)  # the stamps' rows are adjacent once sorted
        for k in np.flatnonzero(counts > 1):  # only the repeated stamps are combined
            combined[k] = _combine(data[first_row[k]:first_row[k] + counts[k]].astype(np.float64), repeats, null_val)
        data = combined
        report.repeated_stamps, report.repeated_rows = int((counts > 1).sum()), int((counts - 1).sum())
        report.repeat_rule = repeats
    minutes = np.diff(unique).astype("timedelta64[s]").astype(np.int64) / 60.0
    if (minutes != np.round(minutes)).any():
        i = int(np.flatnonzero(minutes != np.round(minutes))[0])
        raise UserError(f"{what}: the stamps {_show(unique[i])} and {_show(unique[i + 1])} are not a whole number of "
                        "minutes apart; give stamps on a grid of whole-minute steps.")
    if step_minutes is None and not len(minutes):
        raise UserError(f"{what}: one time stamp alone does not tell the step; give {step_option}.")
    values, seen = np.unique(minutes, return_counts=True)
    common = int(values[np.argmax(seen)]) if len(minutes) else int(step_minutes)
    step = common if step_minutes is None else int(step_minutes)
    if common != step:
        fix = (f"give {step_option} {common}, or stamps {step} minutes apart" if step_option else
               f"give readings {step} minutes apart")
        raise UserError(f"{what}: its time stamps are {common} minutes apart (most rows), but "
                        f"{step_option or 'the run' + chr(39) + 's step'} is {step}; {fix}.")
    report.step_minutes = step
    off = np.flatnonzero(minutes % step != 0)
    if len(off):
        i = int(off[0])
        raise UserError(f"{what}: {_show(unique[i + 1])} is {minutes[i]:g} minutes after {_show(unique[i])}, off the "
                        f"grid of {step}-minute steps; give one row per {step}-minute step.")
    jumps = (minutes // step).astype(np.int64)
    gaps = np.flatnonzero(jumps > 1)
    if len(gaps):
        missing = int((jumps[gaps] - 1).sum())
        if not fill_gaps:
            i = int(gaps[0])
            raise UserError(f"{what}: {_count(len(gaps), 'gap')} in the time stamps, {_count(missing, 'missing step')} "
                            f"of {step} minutes in all (first after "
                            f"{_show(unique[i])}, next stamp {_show(unique[i + 1])}); give one row per step, or pass "
                            "--fill-gaps to insert them as missing readings (masked).")
        position = np.concatenate([[0], np.cumsum(jumps)])
        filled = np.full((int(position[-1]) + 1, *data.shape[1:]), np.nan if null_val is None else null_val,
                         dtype=np.float64)
        filled[position] = data
        data = filled
        report.gaps, report.filled_steps, report.longest_gap = len(gaps), missing, int((jumps[gaps] - 1).max())
    return data, unique[0].astype(dt.datetime), report


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _show(stamp: np.datetime64) -> str:
    return stamp.astype(dt.datetime).isoformat(sep=" ")
