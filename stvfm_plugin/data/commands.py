"""`python -m stvfm_plugin.data {prepare,synth,info}`: dataset preparation in the BasicTS layout."""
from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from dataclasses import dataclass, field
from typing import List, Optional, Sequence

import numpy as np

from ..errors import UserError, exit_status
from . import graph as graphs
from . import readers, time_axis
from .graph import EDGE_FORMATS, graph_format
from .info import DATASETS_ROOT, MINUTES_PER_DAY, DatasetInfo, describe_dataset
from .layout import (DatasetSpec, channels_as_series, check_ratios, missing_share, raw_files,
                     read_meta, write_dataset)
from .presets import PRESETS, load_preset, resolve_preset
from .synth import SynthOptions, synth_dataset

#: share of readings equal to the null value above which `prepare` warns
MISSING_WARNING_SHARE = 0.10


def _log(message: str) -> None:
    print(f"[stvfm_plugin.data] {message}", file=sys.stderr, flush=True)


def prepare_dataset(args: argparse.Namespace) -> Path:
    """Raw files (a preset's folder, or explicit files) -> `<out>/<name>/`."""
    _positive(min_window=args.min_window)
    channels = [int(c) for c in args.channels.split(",")] if args.channels else None
    notes: list[str] = []
    null_val = parse_null_value(args.null_value) if args.null_value is not None else None
    if args.preset:
        null_val = resolve_preset(args.preset).null_val if args.null_value is None else null_val
        axis = _axis_options(args, null_val)
        if not args.src:
            raise UserError(f"--preset {args.preset} needs --src, the folder holding its raw files.")
        spec, signal, adj, coords = load_preset(resolve_preset(args.preset), Path(args.src), args.name, channels,
                                                years=args.years)
        axis = axis.with_preset(resolve_preset(args.preset))
        data, node_ids = signal.values, signal.ids
    else:
        if not (args.data and args.name):
            raise UserError("prepare without --preset needs --data FILE and --name NAME, and --step-minutes M unless "
                            f"the file has time stamps (or use a preset: {', '.join(PRESETS)}).")
        signal = readers.read_signals([Path(p) for p in args.data], args.format, args.key, channels, args.header,
                                      args.grid_axes)
        data, node_ids = signal.values, signal.ids
        notes.extend(signal.notes)
        if args.null_value is None:  # the conventions: a sensor's 0 is a dead sensor, a grid cell's 0 is a count
            grid = signal.grid_shape is not None or bool(args.grid)
            null_val = None if grid else 0.0
            if grid:
                notes.append("a grid of counts: a 0 is a reading, nothing is masked (--null-value 0 masks zeros as "
                             "missing, --null-value -1 marks gaps filled with --fill-gaps)")
        axis = _axis_options(args, null_val)
        header = _ids_in_first_row(args, data.shape[1]) if node_ids is None and args.header is None else None
        if header:
            data, node_ids = data[1:], header
            notes.append(f"{_data_name(args)}: its first row holds the sensor ids the edge list names: read as a "
                         "header (--no-header to keep it as data)")
        elif node_ids is None and args.header is None and readers.first_row_looks_like_ids(data):
            raise UserError(f"{_data_name(args)}: its first row ({', '.join(f'{v:g}' for v in data[0, :3])}, ...) "
                            "looks like sensor ids, not readings (distinct whole numbers outside the range of the "
                            "readings below them); pass --header to read it as ids, or --no-header to keep it as "
                            "readings.")
        if signal.stamps is None and not args.step_minutes:
            raise UserError(f"{_data_name(args)} has no time stamps: give --step-minutes M, the minutes between "
                            "two rows.")
        adj = _read_graph(args, data.shape[1], node_ids, notes)
        coords = graphs.read_coords(Path(args.coords), node_ids) if args.coords else None
        spec = DatasetSpec(name=args.name, step_minutes=args.step_minutes or 0,
                           source={"files": raw_files([*(f for p in args.data for f in _data_files(Path(p))),
                                                       args.graph, args.coords])},
                           node_ids=[str(i) for i in node_ids] if node_ids is not None else None)
    spec.null_val = null_val
    if args.missing_marker is not None:
        data = np.where(data == args.missing_marker, null_val, data)
    if args.nan_as_missing:
        data = np.where(np.isfinite(data), data, null_val)
    if args.grid:
        signal.grid_shape = _stated_grid(args.grid, data.shape[1], signal.grid_shape)
        if node_ids is None:  # a signal without ids: its columns are the grid's cells
            node_ids = spec.node_ids = readers.cell_ids(*signal.grid_shape)
    if signal.grid_shape is not None:
        spec.grid_shape = signal.grid_shape
        coords = graphs.grid_coords(*signal.grid_shape) if coords is None else coords  # the cells' centres
        if adj is None or args.grid_neighbours:
            adj = graphs.grid_adjacency(*signal.grid_shape, neighbours=args.grid_neighbours or 4)
            notes.append(f"grid {signal.grid_shape[0]} x {signal.grid_shape[1]}: cells numbered row-major (ids r<row>c"
                         f"<column>), linked to their {args.grid_neighbours or 4} neighbours as the graph")
    if data.ndim == 3:  # several channels: each (node, channel) a series of its own, every model forecasts them all
        kept = [int(c) for c in args.channels.split(",")] if args.channels else list(range(data.shape[2]))
        named = resolve_preset(args.preset).channel_names if args.preset else ()
        spec.channel_names = [named[c] if c < len(named) else str(c) for c in kept]
        data, node_ids, spec.grid_shape, adj, coords = channels_as_series(
            data, node_ids, spec.grid_shape, adj, coords, spec.channel_names)
        spec.node_ids = node_ids
        notes.append(f"{len(spec.channel_names)} channels ({', '.join(spec.channel_names)}): each node's channels are "
                     f"series of their own, {data.shape[1]} in all (ids <node>@<channel>), linked to the same channel "
                     "of the node's neighbours and to the node's other channels"
                     + (f"; the grid becomes {spec.grid_shape[0]} x {spec.grid_shape[1]} (channels side by side "
                        "in each cell)" if spec.grid_shape else ""))
    data = _time_axis(args, spec, signal, data, axis, notes)
    data = _time_range(args, spec, data, notes)
    if args.ratios:
        spec.ratios = parse_ratios(args.ratios)
    spec.min_window = args.min_window
    if args.floor is not None:
        spec.floor = parse_null_value(args.floor, "--floor")
    folder = write_dataset(args.out, spec, data, adj, coords, overwrite=args.overwrite)
    info = DatasetInfo.load(folder)
    for note in notes:
        _log(note)
    _log(f"wrote {folder}: {info.describe()}")
    for note in info.calendar_notes():
        _log(f"calendar: {note}")
    share = missing_share(data, spec.null_val)
    if share > MISSING_WARNING_SHARE:
        _log(f"WARNING: {100 * share:.1f} % of the readings equal the null value {spec.null_val:g}, so they are treated "
             "as missing: left out of the loss and the metrics. If they are real readings (e.g. zero counts), prepare "
             "again with --null-value none (or --null-value X for another marker) --overwrite.")
    return folder


def _axis_options(args: argparse.Namespace, null_val: Optional[float]) -> "AxisOptions":
    """The time-axis options, once the null value is known (the options that write it need one)."""
    if null_val is None and (args.missing_marker is not None or args.nan_as_missing):
        raise UserError("--missing-marker / --nan-as-missing map readings to the null value, but --null-value is none"
                        + (" (a grid's default)" if args.null_value is None else "") + "; give a --null-value (e.g. -1) "
                        "to mark them, or drop those options.")
    return AxisOptions.from_args(args, null_val)


def _data_name(args: argparse.Namespace) -> str:
    """How the log and messages name `--data`: its file, or files."""
    return ", ".join(Path(p).name for p in args.data)


def _data_files(path: Path) -> List[Path]:
    """The raw files of `--data`: the file, or a folder's window files."""
    return [path / name for name in readers.WINDOW_FILES] if path.is_dir() else [path]


def _ids_in_first_row(args: argparse.Namespace, num_nodes: int) -> Optional[list[str]]:
    """The sensor ids in a numeric first row of a CSV signal (read as data so far), when the edge list names exactly
    those; else None."""
    if len(args.data) > 1 or not (args.graph and Path(args.graph).is_file()
                                  and Path(args.data[0]).suffix.lower() == ".csv"):
        return None
    if (args.graph_format or graph_format(Path(args.graph))) not in EDGE_FORMATS or args.graph_ids is False:
        return None
    first = readers.first_csv_row(Path(args.data[0]))
    names = graphs.edge_names(Path(args.graph))
    found = names <= set(first) and (args.graph_ids or not graphs.fits_indices(names, num_nodes))
    return first if found else None


def parse_null_value(text: str, option: str = "--null-value") -> Optional[float]:
    """`--null-value none|0|X` -> None (every reading is data) or the marker (`--floor` alike: none or the floor)."""
    if text.strip().lower() in ("none", "nan"):
        return None
    meaning = "every reading is data" if option == "--null-value" else "no floor"
    try:
        value = float(text)
    except ValueError:
        raise UserError(f"{option} {text!r}: give none ({meaning}) or a number such as 0 or -1.") from None
    if not np.isfinite(value):
        raise UserError(f"{option} {text!r}: give none or a finite number.")
    return value


@dataclass(frozen=True)
class AxisOptions:
    """How `prepare` handles a time axis that is not regular (`time_axis.regular_axis`)."""

    repeats: Optional[str] = field(default=None, metadata={"help": "Rule for rows that share a stamp (None: refuse)."})
    fill_gaps: bool = field(default=False, metadata={"help": "Insert missing steps as missing readings."})
    sort: bool = field(default=False, metadata={"help": "Sort rows out of time order."})

    @classmethod
    def from_args(cls, args: argparse.Namespace, null_val: Optional[float]) -> "AxisOptions":
        if args.fill_gaps and null_val is None:
            raise UserError("--fill-gaps marks the missing steps with the null value, but --null-value is none"
                            + (" (a grid's default: its zeros are counts)" if args.null_value is None else "")
                            + "; give --null-value X, a value the readings never take (e.g. -1), so that they are "
                            "masked.")
        return cls(args.repeats, args.fill_gaps, args.sort_time)

    def with_preset(self, preset) -> "AxisOptions":
        """A preset's own choices where the command line makes none."""
        return AxisOptions(self.repeats or preset.repeats, self.fill_gaps or preset.fill_gaps,
                           self.sort or preset.sort_time)

    def given(self) -> List[str]:
        return [option for option, on in (("--repeats", self.repeats), ("--fill-gaps", self.fill_gaps),
                                           ("--sort-time", self.sort)) if on]


def _time_axis(args: argparse.Namespace, spec: DatasetSpec, signal: readers.RawSignal, data: np.ndarray,
               axis: AxisOptions, notes: List[str]) -> np.ndarray:
    """The one time axis of the prepared set: the file's stamps, checked and made regular (`time_axis`), or
    `--step-minutes` from `--start`; fills `spec.start`, `spec.step_minutes` and `spec.time_axis`."""
    start, start_offset = None, None
    if args.start:
        [start], start_offset = time_axis.parse_stamps([args.start], "--start")
    if signal.stamps is None:
        if axis.given() and not args.preset:
            raise UserError(f"{' / '.join(axis.given())}: {_data_name(args)} has no time stamps, so there is no "
                            "time order, repeat or gap to handle; drop those options.")
        spec.start = start or spec.start
        spec.step_minutes = args.step_minutes or spec.step_minutes
        spec.utc_offset = start_offset
        return data
    what = _data_name(args) if args.data else f"{spec.source.get('preset')} files"
    texts = time_axis.ten_digit_stamps(signal.stamps) if signal.digit_stamps else None
    if args.digit_stamps and not texts:
        raise UserError(f"--digit-stamps {args.digit_stamps}: the stamps of {what} are not ten digits (YYYYMMDDHH, or "
                        "YYYYMMDD and a slot); drop --digit-stamps.")
    rule = (args.digit_stamps or time_axis.digit_rule(texts, what, args.step_minutes)) if texts else None
    stamps, offset = time_axis.parse_stamps(signal.stamps, what, signal.digit_stamps, args.step_minutes, rule)
    data, first, report = time_axis.regular_axis(
        stamps, data, what, step_minutes=args.step_minutes, null_val=spec.null_val, repeats=axis.repeats,
        fill_gaps=axis.fill_gaps, sort=axis.sort, utc_offset=offset)
    if start is not None:
        if (start_offset is None) != (offset is None):
            raise UserError(f"--start {args.start} {'has' if start_offset else 'has no'} UTC offset and the stamps of "
                            f"{what} {'have' if offset else 'have none'}: drop --start (the stamps give the start).")
        if start_offset is not None:
            [start], _ = time_axis.to_wall_clock([dt.datetime.fromisoformat(args.start)], "--start",
                                                 time_axis.parse_offset(offset))
        if start != first:
            raise UserError(f"--start {args.start} disagrees with the first time stamp of {what} "
                            f"({first.isoformat(sep=' ')}); drop --start (the stamps give the start).")
    spec.start, spec.step_minutes, spec.utc_offset = first, report.step_minutes, offset
    spec.time_axis = report.to_meta()
    if rule == "slots":  # what `forecast --data` reads a newer file of the same source by (`DatasetInfo.digit_stamps`)
        spec.time_axis["digit_stamps"] = rule
        notes.append(f"{what}: stamps read as ST-ResNet's slots of the day, YYYYMMDD and 01 to "
                     f"{MINUTES_PER_DAY // report.step_minutes:02d} (slot 01 at midnight, {report.step_minutes} minutes "
                     "each)" + ("" if args.digit_stamps else "; --digit-stamps hours reads them as hours"))
    notes.extend(f"{what}: {line}" for line in report.lines())
    return data


def _stated_grid(text: str, nodes: int, found) -> tuple:
    """`--grid 16x8`: the grid of a signal whose columns are its cells, row-major; it must hold exactly the columns."""
    height, width = readers.parse_grid(text)
    if height * width != nodes or (found and tuple(found) != (height, width)):
        held = f"its grid is {found[0]} x {found[1]}" if found else f"it has {nodes} columns of readings"
        raise UserError(f"--grid {text}: {height} x {width} = {height * width} cells, but {held}; give the grid the "
                        "data has (rows x columns, cells numbered row-major).")
    return height, width


def _time_range(args: argparse.Namespace, spec: DatasetSpec, data: np.ndarray, notes: List[str]) -> np.ndarray:
    """Keep the steps from `--from` (inclusive) to `--until` (exclusive), on the dataset's own clock."""
    if not (args.time_from or args.time_until):
        return data
    if spec.start is None:
        raise UserError("--from / --until pick steps by their time, but the data has no time stamps and no --start; "
                        "give --start TIME, the time of the first row.")
    step = dt.timedelta(minutes=spec.step_minutes)
    end = spec.start + len(data) * step
    [first], [until] = ([time_axis.parse_stamp(text, option) if text else default]
                        for text, option, default in ((args.time_from, "--from", spec.start),
                                                      (args.time_until, "--until", end)))
    if not spec.start <= first < until <= end:
        raise UserError(f"--from {first.isoformat(sep=' ')} / --until {until.isoformat(sep=' ')}: give a range "
                        f"within the data's {spec.start.isoformat(sep=' ')} to {end.isoformat(sep=' ')}, --from before "
                        "--until.")
    begin, stop = -(-(first - spec.start) // step), -(-(until - spec.start) // step)  # the first steps at or after
    spec.start = spec.start + begin * step
    spec.source = {**spec.source, "from": spec.start.isoformat(), "until": (spec.start + (stop - begin) * step).isoformat()}
    notes.append(f"kept the {stop - begin} steps from {spec.start.isoformat(sep=' ')} to before "
                 f"{(spec.start + (stop - begin) * step).isoformat(sep=' ')} (--from / --until) of {len(data)}")
    return data[begin:stop]


def parse_ratios(text: str) -> list[float]:
    """`--ratios 0.6,0.2,0.2` -> three finite positive shares that sum to 1."""
    try:
        ratios = [float(r) for r in text.split(",")]
    except ValueError:
        raise UserError(f"--ratios {text!r}: give three numbers such as 0.6,0.2,0.2.") from None
    check_ratios(ratios)
    return ratios


def _read_graph(args: argparse.Namespace, num_nodes: int, node_ids, notes: list) -> Optional[np.ndarray]:
    if not args.graph:
        return None
    path = Path(args.graph)
    if not path.is_file():
        raise UserError(f"--graph {path}: no such file.")
    kind = args.graph_format or graph_format(path)
    if kind == "dense":
        adj = graphs.read_dense_adj(path, node_ids)
        rows = readers.csv_rows(path)
        if not args.graph_format and len(rows) in (2, 3) and all(  # plain 2 x 2 or 3 x 3 numbers: an edge list too?
                len(r) == len(rows) and all(readers.is_number(c) for c in r) for r in rows):
            raise UserError(f"{path.name} could be a {adj.shape[0]} x {adj.shape[1]} adjacency matrix or an edge list of "
                            f"{adj.shape[0]} edges: say which with --graph-format dense or --graph-format edges (or "
                            "edges-weighted / edges-gaussian).")
        return adj
    if kind == "pkl":
        return graphs.read_dcrnn_pkl(path)[0]
    return graphs.read_edge_list(path, num_nodes, EDGE_FORMATS[kind], node_ids=node_ids, use_ids=args.graph_ids,
                                 notes=notes)


def _positive(**values: Optional[int]) -> None:
    """Refuse a given count or step that is not at least 1 (0 used to fall back to the default silently)."""
    for option, value in values.items():
        if value is not None and value < 1:
            raise UserError(f"--{option.replace('_', '-')} {value}: give a whole number of at least 1.")


def synth_command(args: argparse.Namespace) -> Path:
    _positive(nodes=args.nodes, steps=args.steps, step_minutes=args.step_minutes, min_window=args.min_window)
    if args.grid:
        return _synth_grid(args)
    like = resolve_like(args.like) if args.like else None
    nodes, steps = (like.num_nodes, like.num_steps) if like else (64, 288 * 14)
    minutes, ratios = (like.step_minutes, tuple(like.ratios)) if like else (5, (0.6, 0.2, 0.2))
    options = SynthOptions(
        num_nodes=args.nodes if args.nodes is not None else nodes, num_steps=args.steps if args.steps is not None else steps,
        step_minutes=args.step_minutes if args.step_minutes is not None else minutes,
        seed=args.seed, missing_share=args.missing, noise=args.noise)
    if args.ratios:
        ratios = tuple(parse_ratios(args.ratios))
    name = args.name or (like.name if like else "Synthetic")
    folder = synth_dataset(Path(args.out), name, options, args.graph, ratios, args.overwrite, args.min_window,
                           graph_nodes=args.nodes)
    _log(f"wrote {folder} (synthetic, {read_meta(folder)['shape']}, seed {args.seed})")
    return folder


def _synth_grid(args: argparse.Namespace) -> Path:
    from .synth_grid import GridOptions, synth_grid_dataset

    if args.like or args.graph or args.nodes:
        raise UserError("--grid generates a grid of its own: drop --like / --graph / --nodes.")
    height, width = readers.parse_grid(args.grid)
    if height < 2 or width < 2:
        raise UserError(f"--grid {args.grid}: give at least 2 x 2 cells.")
    options = GridOptions(height=height, width=width, num_steps=args.steps or 24 * 7 * 6,
                          step_minutes=args.step_minutes or 60, seed=args.seed)
    ratios = tuple(parse_ratios(args.ratios)) if args.ratios else (0.6, 0.2, 0.2)
    folder = synth_grid_dataset(Path(args.out), args.name or "SynthGrid", options, ratios, args.overwrite,
                                args.min_window)
    _log(f"wrote {folder} (synthetic grid {height} x {width}, 2 channels, {read_meta(folder)['shape']}, seed {args.seed})")
    return folder


#: presets whose shape `synth --like` can copy
LIKE = [name for name, p in PRESETS.items() if p.num_nodes and p.num_steps]


def resolve_like(name: str):
    """The preset whose shape `synth --like` copies."""
    for key in LIKE:
        if key.lower() == name.lower():
            return PRESETS[key]
    raise UserError(f"--like {name!r} is not a known shape; choose one of {', '.join(LIKE)}.")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m stvfm_plugin.data",
                                     description=f"Prepare datasets in the BasicTS 1.1.0 layout ({DATASETS_ROOT}/<NAME>/).")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("prepare", help=f"raw files -> {DATASETS_ROOT}/<NAME>/")
    p.add_argument("--preset", help=f"a standard dataset: {', '.join(PRESETS)}")
    p.add_argument("--src", help="folder holding the preset's raw files")
    p.add_argument("--data", nargs="+", metavar="FILE",
                   help="signal file: CSV (time x nodes, optional header), .npz/.npy, .h5; or sliding windows (an .npz "
                        "of x, y, x_offsets, y_offsets, or a folder of train/val/test.npz: DCRNN's, ST-SSL's), read back "
                        "as the series they slide over. Several files of one source (a year each, train then test) "
                        "are one signal, in their order (their stamps checked as one axis)"),
    p.add_argument("--format", choices=["csv", "npz", "h5"], help="signal format (default: from the suffix)")
    p.add_argument("--key", help="array name inside an .npz / key of an .h5 table")
    p.add_argument("--channels", help="channels of a [L, N, C] array, e.g. 0 or 0,2 (default 0)")
    p.add_argument("--header", action=argparse.BooleanOptionalAction, default=None,
                   help="the CSV's first row holds node ids (default: detected; numeric ids need --header)")
    p.add_argument("--graph", help="adjacency: dense CSV, edge list from,to,cost, or DCRNN adj_mx.pkl")
    p.add_argument("--graph-format", choices=["dense", "edges", "edges-weighted", "edges-gaussian", "pkl"],
                   help="an edge list's weighting: edges = 0/1 directed links (BasicTS's PEMS, the default), "
                        "edges-weighted = the third column as weights, edges-gaussian = Gaussian kernel of distances "
                        "(default format: detected from the file)")
    p.add_argument("--graph-ids", action=argparse.BooleanOptionalAction, default=None,
                   help="the edge list names sensor ids of the signal's header (--no-graph-ids: node indices); "
                        "default: detected from the values")
    p.add_argument("--coords", help="CSV with latitude/longitude columns in degrees, or x/y projected (e.g. metres), "
                                    "and sensor_id")
    p.add_argument("--name", help="dataset name (folder name; default: the preset's)")
    p.add_argument("--start", help="time of the first step, e.g. 2012-03-01T00:00 (default: the file's first time stamp)")
    p.add_argument("--step-minutes", type=int, help="minutes between steps, any size: 5, 60, 1440 (daily), 10080 "
                                                    "(weekly); a file with time stamps must agree (default: theirs)")
    p.add_argument("--repeats", choices=time_axis.REPEAT_RULES,
                   help="combine rows that share a time stamp by this rule (default: refuse them)")
    p.add_argument("--fill-gaps", action="store_true",
                   help="insert the steps missing from the time stamps as missing readings (the null value, masked; "
                        "default: refuse gaps)")
    p.add_argument("--sort-time", action="store_true", help="sort rows out of time order (default: refuse them)")
    p.add_argument("--digit-stamps", choices=time_axis.DIGIT_RULES,
                   help="ten-digit stamps of a grid file: hours (YYYYMMDDHH, 00-23) or slots (ST-ResNet's TaxiBJ / "
                        "BikeNYC: YYYYMMDD and the slot of the day, 01 to T, slot 01 at midnight); default: told by "
                        "the stamps (a 00 is an hour, above 23 a slot)")
    p.add_argument("--grid-axes", choices=readers.GRID_AXES,
                   help="axis order of a grid array: THW, TCHW (channels first) or THWC (channels last); default: "
                        "[T, N(, C)] for 2-3 axes, detected from the shape for 4")
    p.add_argument("--from", dest="time_from", metavar="TIME",
                   help="keep the steps from this time on, e.g. 2014-01-01 (on the data's clock)")
    p.add_argument("--until", dest="time_until", metavar="TIME",
                   help="keep the steps before this time, e.g. 2014-09-01")
    p.add_argument("--grid", metavar="HxW",
                   help="the signal's columns are the cells of an H x W grid, numbered row-major (e.g. 16x8)")
    p.add_argument("--grid-neighbours", type=int, choices=(4, 8),
                   help="a grid's graph links each cell to its 4 neighbours (default) or 8 (with the diagonals)")
    p.add_argument("--years", help="years of a preset published one file a year, e.g. 2014 or 2013-2014")
    p.add_argument("--ratios", help="train,val,test split ratios, e.g. 0.6,0.2,0.2")
    p.add_argument("--null-value", "--null-val", dest="null_value", metavar="none|0|X",
                   help="value that marks a missing reading (masked in loss and metrics); none: every reading is data, "
                        "e.g. counts with real zeros (default: 0 for sensors, the traffic convention; none for a grid "
                        "of counts; the preset's)")
    p.add_argument("--floor", metavar="none|X",
                   help="the lowest value a reading can take: interval bounds never go below it (default: 0 when no "
                        "reading is negative, e.g. counts and speeds; none: no floor)")
    p.add_argument("--missing-marker", type=float, help="value in the raw file that means missing (mapped to --null-value)")
    p.add_argument("--nan-as-missing", action="store_true", help="treat NaN/inf in the raw file as missing readings")
    p.add_argument("--min-window", type=int, default=24, help="input + output length every split must hold (default 24)")
    p.add_argument("--out", default=DATASETS_ROOT, help=f"root folder (default: {DATASETS_ROOT}, as BasicTS expects)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing dataset")
    p.set_defaults(func=prepare_dataset)

    s = sub.add_parser("synth", help="generate a synthetic traffic set")
    s.add_argument("--like", help=f"copy the shape of a standard set: {', '.join(LIKE)}")
    s.add_argument("--grid", metavar="HxW", help="a city grid of trip starts and ends instead of a road graph, e.g. 8x6 "
                                                 "(hourly, 6 weeks by default)")
    s.add_argument("--graph", help="use this road graph (edge list, dense CSV or pkl) instead of a generated one")
    s.add_argument("--name", help="dataset name (default: the --like name, else Synthetic)")
    s.add_argument("--nodes", type=int, help="number of nodes (default 64, or the --like set's)")
    s.add_argument("--steps", type=int, help="number of time steps (default 4032 = 14 days)")
    s.add_argument("--step-minutes", type=int, help="minutes between steps (default 5)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--missing", type=float, default=0.02, help="share of missing (zero) readings")
    s.add_argument("--noise", type=float, default=0.05, help="relative sensor noise")
    s.add_argument("--ratios", help="train,val,test split ratios")
    s.add_argument("--min-window", type=int, default=24)
    s.add_argument("--out", default=DATASETS_ROOT)
    s.add_argument("--overwrite", action="store_true")
    s.set_defaults(func=synth_command)

    i = sub.add_parser("info", help="describe a prepared set")
    i.add_argument("name", help="dataset name (under --out) or a dataset folder")
    i.add_argument("--out", default=DATASETS_ROOT)
    i.set_defaults(func=lambda a: print(describe_dataset(
        Path(a.name) if Path(a.name, "meta.json").is_file() else Path(a.out) / a.name)))
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    return exit_status(lambda: args.func(args))
