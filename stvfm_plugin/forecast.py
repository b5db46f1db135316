"""Command line: `python -m stvfm_plugin.forecast RUN`: the steps after the latest readings, with calibrated intervals.

The third command after `prepare` and training: RUN is a run folder (or a checkpoint in one). Without `--data` the
forecast starts after the prepared dataset's last reading; with `--data latest.csv` after that file's last row.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np

from .data import readers, time_axis
from .data.layout import channels_as_series
from .errors import UserError, exit_status

EPILOG = """examples:
  python -m stvfm_plugin.forecast checkpoints/STID/MyCity_100_12_12/<md5>/<time> --out forecast.csv --plot forecast.png
  python -m stvfm_plugin.forecast RUN --data latest.csv --end "2012-03-08 00:55" --coverage 0.9

--data: readings in the layout `prepare` takes: a header of sensor ids (matched by id, in any column order) or no
header (the training's sensor order), at least input_len rows, empty cells for missing readings; the time of the last
row from --end or a leading timestamp column. --out: one row per time, sensor and step (time, sensor, step, forecast,
lower, upper; on data with channels, one per channel too, named in a `channel` column after `sensor`)."""

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
    parser.add_argument("--end", metavar="TIME", help="time of the last row of --data when it has no time stamps, e.g. "
                                                      "2012-03-08T00:55 (where the time is known, it must agree)")
    parser.add_argument("--repeats", choices=time_axis.REPEAT_RULES,
                        help="combine rows of --data that share a time stamp by this rule (default: refuse them)")
    parser.add_argument("--fill-gaps", action="store_true",
                        help="steps missing from the time stamps of --data count as missing readings (default: refuse)")
    parser.add_argument("--sort-time", action="store_true", help="sort rows of --data out of time order (default: refuse)")
    parser.add_argument("--coverage", type=float, default=0.9, metavar="LEVEL",
                        help="coverage of the bounds: a level the run calibrated (default 0.9)")
    parser.add_argument("--out", metavar="CSV", help="write the forecast table here")
    parser.add_argument("--plot", metavar="PNG", help="draw the recent readings, the forecast and its band here")
    parser.add_argument("--nodes", nargs="+", metavar="ID", help=f"sensors to show (default: the {SHOWN} busiest, whose recent readings moved most)")
    parser.add_argument("--threads", type=int, metavar="N", help="torch CPU threads (default: every available core)")
    parser.add_argument("-g", "--gpus", default=None, metavar="ID", help="'cpu' (default) or a GPU index, e.g. 0")
    return parser


def parse_time(text: str, what: str, offset: Optional[str] = None) -> dt.datetime:
    """A time on the command line, under the time-zone rule of `data.time_axis` (converted to the dataset's offset)."""
    [stamp], _ = time_axis.to_wall_clock([time_axis.parse_stamp(text, what)], what, time_axis.parse_offset(offset))
    return stamp


def read_readings(path: Path, forecaster, repeats: Optional[str] = None, fill_gaps: bool = False, sort: bool = False,
                  ) -> tuple[np.ndarray, Optional[dt.datetime]]:
    """Readings `[T, N]` of a file in the training's sensor order, through `prepare`'s reader and time-axis checks
    (`repeats`, `fill_gaps`, `sort`: as `--repeats`, `--fill-gaps`, `--sort-time`), and the time of its last row (None
    without time stamps)."""
    ids = list(forecaster.sensor_ids)
    if not path.is_file():
        raise UserError(f"--data {path}: no such file.")
    names = list(forecaster.dataset.channel_names or [])
    grid = forecaster.dataset.grid_shape  # H x (W * C) series: the run's cells and channels tell a grid file's axes
    like = (grid[0], grid[1] // max(len(names), 1), max(len(names), 1)) if grid else None
    signal = readers.read_signal(path, known_ids=ids if forecaster.dataset.node_ids else None,
                                 null_hint="leave a missing reading's cell empty", grid_like=like)
    values = signal.values
    if values.ndim == 3 and values.shape[2] == len(names):  # a grid file of the run's channels: its series, as prepared
        values, signal.ids = channels_as_series(values, signal.ids, None, None, None, names)[:2]
    if values.ndim != 2:
        raise UserError(f"--data {path}: readings of shape {list(values.shape)}; give one column per sensor"
                        + (f", or the run's {len(names)} channels ({', '.join(names)})" if names else "") + ".")
    if signal.ids is None and readers.first_row_looks_like_ids(values):
        raise UserError(f"--data {path}: its first row ({', '.join(f'{v:g}' for v in values[0, :3])}, ...) looks like "
                        f"sensor ids, but not the run's ({', '.join(ids[:3])}, ...); give a header of the run's sensor "
                        "ids, or no header and the training's order.")
    order = _column_order(path, signal.ids, ids)
    if signal.ids is None and values.shape[1] != len(ids):
        raise UserError(f"--data {path}: {values.shape[1]} columns of readings, the run has {len(ids)} sensors; give "
                        "one column per sensor (a header of their ids, or the training's order).")
    values = values[:, order]
    infinite = np.argwhere(np.isinf(values))
    if len(infinite):
        t, n = infinite[0]
        raise UserError(f"--data {path}: an infinite reading ({values[t, n]:g}) at row {t + 1} for sensor {ids[n]}; "
                        "leave a missing reading's cell empty.")
    if signal.stamps is None:
        return values, None
    what = f"--data {path}"
    stamps = time_axis.read_stamps(signal.stamps, what, signal.digit_stamps, forecaster.dataset.step_minutes,
                                   forecaster.dataset.digit_stamps)  # ten digits read as the run's data were
    stamps, offset = time_axis.to_wall_clock(stamps, what, time_axis.parse_offset(forecaster.dataset.utc_offset))
    values, first, report = time_axis.regular_axis(
        stamps, values, what, step_minutes=forecaster.dataset.step_minutes, repeats=repeats, fill_gaps=fill_gaps,
        sort=sort, utc_offset=offset, step_option=None)
    for line in report.lines():
        print(f"note: {what}: {line}", file=sys.stderr)
    return values, first + (len(values) - 1) * forecaster.step


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


def check_outputs(args: argparse.Namespace) -> None:
    """`--out` and `--plot` can be written, checked before any work (so nothing is computed, or half written, for a
    path that fails at the end)."""
    for option, value in (("--out", args.out), ("--plot", args.plot)):
        if not value:
            continue
        path = Path(value)
        if path.is_dir():
            raise UserError(f"{option} {value} is a folder; give a file name.")
        parent = next(p for p in [path.parent, *path.parent.parents] if p.exists())
        if not parent.is_dir():
            raise UserError(f"{option} {value}: {parent} is a file, not a folder.")
        if not os.access(parent, os.W_OK):
            raise UserError(f"{option} {value}: the folder {parent} is not writable.")
    if args.plot:
        from matplotlib.figure import Figure

        kinds = Figure().canvas.get_supported_filetypes()
        suffix = Path(args.plot).suffix.lower().lstrip(".")
        if suffix not in kinds:
            raise UserError(f"--plot {args.plot}: give a file name ending in one of .png, .pdf, .svg "
                            f"(a figure type matplotlib writes), not {'.' + suffix if suffix else 'no suffix'}.")


#: forecast steps the maps of a grid show (those the forecast reaches)
MAP_STEPS = (1, 6, 12)


def plot_maps(path: Path, table, last: np.ndarray, end: Optional[dt.datetime], dataset, level: float) -> None:
    """A grid's maps, one row per channel: the last observed frame, the forecast at a few steps (one colour scale per
    channel), and the interval's width at the last of them.

    Shapes:
        last: `[N]`, the series of the grid in node-major order (`n * C + c`, `data.layout.channels_as_series`).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(dataset.channel_names or ["reading"])
    height, width = dataset.grid_shape[0], dataset.grid_shape[1] // len(names)
    steps = [k for k in MAP_STEPS if k <= table["step"].max()] or [int(table["step"].max())]
    frame = lambda values, c: np.asarray(values, dtype=float)[c::len(names)].reshape(height, width)  # noqa: E731
    panel = 2.4 * min(1.0, max(0.35, width / height))  # a panel's width follows the grid's shape (tall grids: narrow)
    fig, axes = plt.subplots(len(names), len(steps) + 2, figsize=((panel + 0.5) * (len(steps) + 2), 2.8 * len(names)),
                             squeeze=False, layout="constrained")
    for c, name in enumerate(names):
        forecasts = [table[table["step"] == k] for k in steps]
        shown = [frame(last, c)] + [frame(f["forecast"], c) for f in forecasts]
        top = max(float(np.nanmax(m)) for m in shown) or 1.0
        titles = [f"{name}: last observed" + (f"\n{end:%Y-%m-%d %H:%M}" if end else "")] + [
            f"{name}: forecast +{k}" + (f"\n{f['time'].iloc[0]:%Y-%m-%d %H:%M}" if end else "")
            for k, f in zip(steps, forecasts)]
        for ax, values, title in zip(axes[c], shown, titles):
            image = ax.imshow(values, vmin=0 if top > 0 else None, vmax=top, cmap="viridis")
            ax.set_title(title, fontsize=8)
        fig.colorbar(image, ax=list(axes[c, :len(shown)]), shrink=0.8)
        widest = forecasts[-1]
        spread = axes[c, -1].imshow(frame(widest["upper"] - widest["lower"], c), cmap="magma")
        axes[c, -1].set_title(f"{name}: {level:.0%} interval width, +{steps[-1]}", fontsize=8)
        fig.colorbar(spread, ax=axes[c, -1], shrink=0.8)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def forecast_command(args: argparse.Namespace) -> None:
    from .forecaster import Forecaster
    from .run import select_gpus, set_threads

    if not 0 < args.coverage < 1:
        raise UserError(f"--coverage {args.coverage:g}: give a level between 0 and 1, such as 0.9.")
    if not args.data and (args.repeats or args.fill_gaps or args.sort_time):
        raise UserError("--repeats / --fill-gaps / --sort-time handle the time stamps of --data; without --data the "
                        "prepared data is used, whose time axis is regular: drop them.")
    check_outputs(args)
    threads = set_threads(args.threads)
    if "WARNING" in threads:
        print(threads.replace("CPU threads", "note: CPU threads", 1), file=sys.stderr)
    gpus = select_gpus(args.gpus)
    if gpus and "," in gpus:
        raise UserError(f"-g {args.gpus}: a forecast runs on one GPU; give one index.")
    forecaster = Forecaster.load(Path(args.run), gpu=bool(gpus))
    ids = forecaster.sensor_ids
    end = parse_time(args.end, "--end", forecaster.dataset.utc_offset) if args.end else None
    if args.data:
        readings, file_end = read_readings(Path(args.data), forecaster, args.repeats, args.fill_gaps, args.sort_time)
        if end is not None and file_end is not None and end != file_end:
            raise UserError(f"--end {args.end} disagrees with the last time stamp of --data {args.data} "
                            f"({file_end.isoformat(sep=' ')}); drop --end (the file's stamps give the time).")
        end = end or file_end
        if end is None and forecaster.dataset.start:
            raise UserError(f"--data {args.data} has no timestamp column: give --end TIME, the time of its last row.")
        if end is not None and not forecaster.dataset.start:
            raise UserError(f"{'--end' if args.end else f'--data {args.data}'} gives a time, but dataset "
                            f"{forecaster.dataset.name} has no start time: its calendar features count steps from a "
                            "Monday midnight, not the real clock, so a real time would give the model other features "
                            "than it trained with. Give --data without times (and no --end), or prepare the dataset "
                            "with --start (or time stamps) and train again.")
        forecaster.check_readings(readings, f"--data {args.data}")
    else:
        readings, latest_end = forecaster.latest(rows=HISTORY * forecaster.input_len)
        if end is not None and end != latest_end:
            raise UserError(f"--end {args.end}: without --data the forecast follows the prepared data's last reading, "
                            f"at {latest_end.isoformat(sep=' ') if latest_end else 'an unknown time'}; drop --end, or "
                            "give --data with the readings up to that time.")
        end = latest_end
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
        written = table
        if "channel" in table:  # a signal of several channels: the node in `sensor`, the channel beside it
            written = table.assign(sensor=table["sensor"].str.rpartition("@")[0])
        written.to_csv(args.out, index=False, float_format="%.4f")
        print(f"wrote {args.out} ({len(table)} rows)")
    if args.plot:
        if forecaster.dataset.grid_shape:
            plot_maps(Path(args.plot), table, recent[-1], end, forecaster.dataset, args.coverage)
        else:
            plot(Path(args.plot), table, recent, end, forecaster.step, ids, sensors, args.coverage)
        print(f"wrote {args.plot}")


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    return exit_status(lambda: forecast_command(args), "interrupted: nothing written.")


if __name__ == "__main__":
    raise SystemExit(main())
