"""Command line: `python -m stvfm_plugin.forecast RUN`: the steps after the latest readings, with calibrated intervals.

The third command after `prepare` and training: RUN is a run folder (or a checkpoint in one). Without `--data` the
forecast starts after the prepared dataset's last reading; with `--data latest.csv` after that file's last row.
"""
from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np

from .data.readers import csv_rows, is_number
from .errors import UserError, exit_status

EPILOG = """examples:
  python -m stvfm_plugin.forecast checkpoints/STID/<md5>/<time> --out forecast.csv --plot forecast.png
  python -m stvfm_plugin.forecast RUN --data latest.csv --end "2012-03-08 00:55" --coverage 0.9

--data: readings in the layout `prepare` takes: a header of sensor ids (matched by id, in any column order) or no
header (the training's sensor order), at least input_len rows, empty cells for missing readings; the time of the last
row from --end or a leading timestamp column. --out: one row per time, sensor and step (time, sensor, step, forecast,
lower, upper)."""

#: sensors the terminal table and the plot show by default (the busiest: the readings that moved most lately)
SHOWN = 4
#: input windows of recent readings the plot shows before the forecast
HISTORY = 3


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m stvfm_plugin.forecast", epilog=EPILOG,
                                     description="Forecast the next steps of a trained run, with calibrated intervals.",
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", metavar="RUN", help="a run folder (or a checkpoint file in one)")
    parser.add_argument("--data", metavar="CSV", help="latest readings (default: the prepared dataset's last ones)")
    parser.add_argument("--end", metavar="TIME", help="time of the last reading, e.g. 2012-03-08T00:55")
    parser.add_argument("--coverage", type=float, default=0.9, metavar="LEVEL",
                        help="coverage of the bounds: a level the run calibrated (default 0.9)")
    parser.add_argument("--out", metavar="CSV", help="write the forecast table here")
    parser.add_argument("--plot", metavar="PNG", help="draw the recent readings, the forecast and its band here")
    parser.add_argument("--nodes", nargs="+", metavar="ID", help=f"sensors to show (default: the {SHOWN} busiest, whose recent readings moved most)")
    parser.add_argument("--threads", type=int, metavar="N", help="torch CPU threads (default: every available core)")
    parser.add_argument("-g", "--gpus", default=None, metavar="ID", help="'cpu' (default) or a GPU index, e.g. 0")
    return parser


def parse_time(text: str, what: str) -> dt.datetime:
    try:
        return dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise UserError(f"{what} {text!r} is not a date/time such as 2012-03-08T00:55.") from None


def read_readings(path: Path, sensor_ids: Sequence[str]) -> tuple[np.ndarray, Optional[dt.datetime]]:
    """Readings `[T, N]` of a CSV in the training's sensor order, and the time of its last row (None without a
    timestamp column)."""
    if not path.is_file():
        raise UserError(f"--data {path}: no such file.")
    rows = [row for row in csv_rows(path) if any(cell.strip() for cell in row)]
    if not rows:
        raise UserError(f"--data {path} is empty.")
    timed = bool(rows[-1]) and not is_number(rows[-1][0]) and _is_time(rows[-1][0])  # a leading timestamp column
    first = [c.strip() for c in rows[0][int(timed):]]  # a header: words, or exactly the run's (numeric) sensor ids
    header = rows[0] if any(c and not is_number(c) for c in first) or sorted(first) == sorted(sensor_ids) else None
    body = rows[1:] if header is not None else rows
    names = [c.strip() for c in header[int(timed):]] if header is not None else None
    order = _column_order(path, names, list(sensor_ids))
    values = np.full((len(body), len(order)), np.nan)
    for i, row in enumerate(body):
        cells = row[int(timed):]
        if len(cells) != (len(names) if names is not None else len(sensor_ids)):
            raise UserError(f"--data {path}: row {i + 1 + (header is not None)} has {len(cells)} readings, the "
                            f"{'header names' if names is not None else 'run has'} "
                            f"{len(names) if names is not None else len(sensor_ids)}.")
        for j, k in enumerate(order):
            cell = cells[k].strip()
            if cell and not is_number(cell):
                raise UserError(f"--data {path}: non-numeric cell {cell!r} at row {i + 1 + (header is not None)}, "
                                f"column {k + 1 + int(timed)}. Give numbers, and leave missing readings empty.")
            values[i, j] = float(cell) if cell else np.nan
    end = parse_time(body[-1][0], f"--data {path}: the last row's time") if timed else None
    return values, end


def _is_time(text: str) -> bool:
    try:
        dt.datetime.fromisoformat(text.strip())
        return True
    except ValueError:
        return False


def _column_order(path: Path, names: Optional[List[str]], ids: List[str]) -> List[int]:
    """For each training sensor, its column in the file (a header is matched by id; no header: the same order)."""
    if names is None:
        return list(range(len(ids)))
    unknown = [n for n in names if n not in set(ids)]
    missing = [i for i in ids if i not in set(names)]
    if unknown or missing or len(set(names)) != len(names):
        problem = (f"{len(unknown)} sensor id(s) the run does not know ({', '.join(unknown[:5])})" if unknown else
                   f"{len(missing)} of the run's sensors missing ({', '.join(missing[:5])})" if missing else
                   "sensor ids named twice")
        raise UserError(f"--data {path}: {problem}. Its header must name each of the run's {len(ids)} sensors once, "
                        "in any order (or give no header and the training's order).")
    return [names.index(i) for i in ids]


def shown_sensors(table, readings: np.ndarray, sensor_ids: Sequence[str], nodes: Optional[Sequence[str]]) -> List[str]:
    """The sensors to print and plot: `nodes` (checked), else the busiest few (largest spread of recent readings)."""
    if nodes:
        unknown = [n for n in nodes if n not in set(sensor_ids)]
        if unknown:
            raise UserError(f"--nodes: unknown sensor id(s) {', '.join(unknown[:5])}; the run's sensors are "
                            f"{', '.join(list(sensor_ids)[:5])}, ...")
        return list(nodes)
    busiest = np.argsort(-np.nan_to_num(np.nanstd(readings, axis=0)), kind="stable")[:SHOWN]
    return [sensor_ids[i] for i in busiest]


def summary(table, sensors: Sequence[str]) -> str:
    """A short table: the shown sensors' forecast and bounds at a few steps."""
    steps = sorted({1, 3, 6, 12, int(table["step"].max())} & set(table["step"]))
    lines = [f"{'sensor':>12}  {'step':>4}  {'time':>16}  {'forecast':>9}  {'lower':>9}  {'upper':>9}"]
    for sensor in sensors:
        for step in steps:
            row = table[(table["sensor"] == sensor) & (table["step"] == step)].iloc[0]
            when = row["time"].strftime("%Y-%m-%d %H:%M") if row["time"] is not None else "—"
            lines.append(f"{sensor:>12}  {step:>4}  {when:>16}  {row['forecast']:9.3f}  {row['lower']:9.3f}  "
                         f"{row['upper']:9.3f}")
    return "\n".join(lines)


def plot(path: Path, table, readings: np.ndarray, end: Optional[dt.datetime], step: dt.timedelta,
         sensor_ids: Sequence[str], sensors: Sequence[str], level: float) -> None:
    """The recent readings, the forecast and its band, one panel per shown sensor."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(sensors), 1, figsize=(9, 2.4 * len(sensors)), squeeze=False)
    history = np.arange(-len(readings) + 1, 1)
    for ax, sensor in zip(axes[:, 0], sensors):
        rows = table[table["sensor"] == sensor]
        ahead = rows["step"].to_numpy()
        x_past = [end + k * step for k in history] if end else history
        x_next = [end + k * step for k in ahead] if end else ahead
        ax.plot(x_past, readings[:, list(sensor_ids).index(sensor)], color="black", lw=1, label="readings")
        ax.plot(x_next, rows["forecast"], color="tab:blue", lw=1.5, label="forecast")
        ax.fill_between(x_next, rows["lower"], rows["upper"], color="tab:blue", alpha=0.2,
                        label=f"{level:.0%} interval")
        ax.set_title(f"sensor {sensor}", fontsize=9)
        ax.tick_params(labelsize=8)
    axes[0, 0].legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def forecast_command(args: argparse.Namespace) -> None:
    from .forecaster import Forecaster
    from .run import select_gpus, set_threads

    if not 0 < args.coverage < 1:
        raise UserError(f"--coverage {args.coverage:g}: give a level between 0 and 1, such as 0.9.")
    end = parse_time(args.end, "--end") if args.end else None
    set_threads(args.threads)
    gpus = select_gpus(args.gpus)
    if gpus and "," in gpus:
        raise UserError(f"-g {args.gpus}: a forecast runs on one GPU; give one index.")
    forecaster = Forecaster.load(Path(args.run), gpu=bool(gpus))
    ids = forecaster.sensor_ids
    if args.data:
        readings, file_end = read_readings(Path(args.data), ids)
        end = end or file_end
        if end is None and forecaster.dataset.start:
            raise UserError(f"--data {args.data} has no timestamp column: give --end TIME, the time of its last row.")
    else:
        readings, latest_end = forecaster.latest(rows=HISTORY * forecaster.input_len)
        end = end or latest_end
    table = forecaster.forecast(readings, end=end, level=args.coverage)
    recent = readings[-HISTORY * forecaster.input_len:]
    sensors = shown_sensors(table, recent, ids, args.nodes)
    if forecaster.calibration is None:
        print("note: this run has no calibration.json (trained before intervals existed): no bounds.", file=sys.stderr)
    print(f"{forecaster.output_len} steps after {end.isoformat(sep=' ') if end else 'the last reading'}, "
          f"{len(ids)} sensors, {args.coverage:.0%} intervals ({forecaster.checkpoint.name}):")
    print(summary(table, sensors))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(args.out, index=False, float_format="%.4f")
        print(f"wrote {args.out} ({len(table)} rows)")
    if args.plot:
        plot(Path(args.plot), table, recent, end, forecaster.step, ids, sensors, args.coverage)
        print(f"wrote {args.plot}")


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    return exit_status(lambda: forecast_command(args), "interrupted: nothing written.")


if __name__ == "__main__":
    raise SystemExit(main())
