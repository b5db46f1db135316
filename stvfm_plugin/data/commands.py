"""`python -m stvfm_plugin.data {prepare,synth,info}`: dataset preparation in the BasicTS layout."""
from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..errors import UserError, exit_status
from . import graph as graphs
from . import readers
from .layout import DATA_FILES, DatasetSpec, check_ratios, load_coords, load_graph, read_meta, write_dataset
from .presets import PRESETS, load_preset, resolve_preset
from .synth import SynthOptions, generate

#: Shapes of the standard sets, for `synth --like`: nodes, steps, minutes per step, split ratios.
LIKE = {
    "PEMS03": (358, 26208, 5, (0.6, 0.2, 0.2)),
    "PEMS04": (307, 16992, 5, (0.6, 0.2, 0.2)),
    "PEMS07": (883, 28224, 5, (0.6, 0.2, 0.2)),
    "PEMS08": (170, 17856, 5, (0.6, 0.2, 0.2)),
    "METR-LA": (207, 34272, 5, (0.7, 0.1, 0.2)),
    "PEMS-BAY": (325, 52116, 5, (0.7, 0.1, 0.2)),
}


def _log(message: str) -> None:
    print(f"[stvfm_plugin.data] {message}", file=sys.stderr, flush=True)


def prepare_dataset(args: argparse.Namespace) -> Path:
    """Raw files (a preset's folder, or explicit files) -> `<out>/<name>/`."""
    channels = [int(c) for c in args.channels.split(",")] if args.channels else None
    if args.preset:
        if not args.src:
            raise UserError(f"--preset {args.preset} needs --src, the folder holding its raw files.")
        spec, data, adj, coords = load_preset(resolve_preset(args.preset), Path(args.src), args.name, channels)
    else:
        if not (args.data and args.name and args.step_minutes):
            raise UserError("prepare without --preset needs --data FILE, --name NAME and --step-minutes M "
                            f"(or use a preset: {', '.join(PRESETS)}).")
        data, node_ids, start = _read_signal(Path(args.data), args.format, args.key, channels, args.header)
        adj = _read_graph(args, data.shape[1], node_ids)
        coords = graphs.read_coords(Path(args.coords), node_ids) if args.coords else None
        spec = DatasetSpec(name=args.name, step_minutes=args.step_minutes, start=start,
                           source={"files": [p for p in (args.data, args.graph, args.coords) if p]})
    if args.start:
        spec.start = _parse_start(args.start)
    if args.step_minutes and args.preset:
        spec.step_minutes = args.step_minutes
    if args.ratios:
        spec.ratios = parse_ratios(args.ratios)
    if args.null_val is not None:
        spec.null_val = args.null_val
    spec.min_window = args.min_window
    if args.missing_marker is not None:
        data = np.where(data == args.missing_marker, spec.null_val, data)
    if args.nan_as_missing:
        data = np.where(np.isfinite(data), data, spec.null_val)
    folder = write_dataset(args.out, spec, data, adj, coords, overwrite=args.overwrite)
    _log(f"wrote {folder} ({' x '.join(map(str, data.shape))}, splits {read_meta(folder)['split_lengths']})")
    return folder


def _read_signal(path: Path, fmt: Optional[str], key: Optional[str], channels, header: Optional[bool]):
    fmt = fmt or {".csv": "csv", ".npz": "npz", ".npy": "npz", ".h5": "h5", ".hdf5": "h5"}.get(path.suffix.lower())
    if fmt == "csv":
        data, ids = readers.read_csv_matrix(path, header=header)
        return data, ids, None
    if fmt == "npz":
        return readers.read_array(path, key, channels), None, None
    if fmt == "h5":
        data, start, ids = readers.read_h5(path, key)
        return data, ids, start
    raise UserError(f"{path}: unknown signal format; use --format csv|npz|h5.")


def parse_ratios(text: str) -> list[float]:
    """`--ratios 0.6,0.2,0.2` -> three finite positive shares that sum to 1."""
    try:
        ratios = [float(r) for r in text.split(",")]
    except ValueError:
        raise UserError(f"--ratios {text!r}: give three numbers such as 0.6,0.2,0.2.") from None
    check_ratios(ratios)
    return ratios


def _read_graph(args: argparse.Namespace, num_nodes: int, node_ids) -> Optional[np.ndarray]:
    if not args.graph:
        return None
    path = Path(args.graph)
    if not path.is_file():
        raise UserError(f"--graph {path}: no such file.")
    kind = args.graph_format or ("pkl" if path.suffix == ".pkl" else None)
    if kind is None:
        with open(path, encoding="utf-8-sig") as f:
            first = f.readline().lower()
        kind = "edges" if ("from" in first and "to" in first) else "dense"
    if kind == "dense":
        return graphs.read_dense_adj(path)
    if kind == "pkl":
        return graphs.read_dcrnn_pkl(path)[0]
    weighting = "gaussian" if kind == "edges-gaussian" else "connectivity"
    return graphs.read_edge_list(path, num_nodes, weighting, node_ids=node_ids if args.graph_ids else None)


def _parse_start(text: str) -> dt.datetime:
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        raise UserError(f"--start {text!r} is not a date/time such as 2012-03-01 or 2012-03-01T00:00.") from None


def synth_dataset(root: Path, name: str, options: SynthOptions, graph_path: Optional[Path] = None,
                  ratios: Sequence[float] = (0.6, 0.2, 0.2), overwrite: bool = False,
                  min_window: int = 24, graph_nodes: Optional[int] = None) -> Path:
    """Generate a synthetic set and write it as `<root>/<name>/`.

    With `graph_path`, the graph's nodes are the dataset's (an edge list has `graph_nodes` nodes, or
    as many as its largest node id + 1).
    """
    adj = None
    if graph_path is not None:
        adj = read_graph_file(Path(graph_path), graph_nodes)
    flow, adj, coords = generate(options, adj)
    spec = DatasetSpec(name=name, step_minutes=options.step_minutes, ratios=ratios, null_val=0.0,
                       domain="synthetic traffic flow", min_window=min_window,
                       source={"synthetic": {k: v for k, v in vars(options).items()},
                               "graph": str(graph_path) if graph_path else "generated road graph"})
    return write_dataset(root, spec, flow, adj, coords, overwrite=overwrite)


def read_graph_file(path: Path, num_nodes: Optional[int] = None) -> np.ndarray:
    """A graph for the generator: edge list (`num_nodes`, default its largest id + 1), dense CSV or pkl."""
    if path.suffix == ".pkl":
        return graphs.read_dcrnn_pkl(path)[0]
    with open(path, encoding="utf-8-sig") as f:
        first = f.readline().lower()
    if "from" in first and "to" in first:
        ids, _ = readers.read_csv_matrix(path, header=True)
        return graphs.read_edge_list(path, num_nodes or int(ids[:, :2].max()) + 1)
    return graphs.read_dense_adj(path)


def synth_command(args: argparse.Namespace) -> Path:
    nodes, steps, minutes, ratios = LIKE[resolve_like(args.like)] if args.like else (64, 288 * 14, 5, (0.6, 0.2, 0.2))
    options = SynthOptions(
        num_nodes=args.nodes or nodes, num_steps=args.steps or steps, step_minutes=args.step_minutes or minutes,
        seed=args.seed, missing_share=args.missing, noise=args.noise)
    if args.ratios:
        ratios = tuple(parse_ratios(args.ratios))
    name = args.name or (resolve_like(args.like) if args.like else "Synthetic")
    folder = synth_dataset(Path(args.out), name, options, args.graph, ratios, args.overwrite, args.min_window,
                           graph_nodes=args.nodes)
    _log(f"wrote {folder} (synthetic, {read_meta(folder)['shape']}, seed {args.seed})")
    return folder


def resolve_like(name: str) -> str:
    for key in LIKE:
        if key.lower() == name.lower():
            return key
    raise UserError(f"--like {name!r} is not a known shape; choose one of {', '.join(LIKE)}.")


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
    zeros = sum(int(np.count_nonzero(np.asarray(a) == null)) for a in arrays)
    cells = sum(a.size for a in arrays)
    lines = [
        f"dataset     {meta['name']}  ({folder})",
        f"shape       {total} x {' x '.join(map(str, arrays[0].shape[1:]))}  (time x nodes{' x channels' if arrays[0].ndim == 3 else ''})",
        f"splits      train {arrays[0].shape[0]} / val {arrays[1].shape[0]} / test {arrays[2].shape[0]} steps  "
        f"(ratios {meta['regular_settings']['train_val_test_ratio']})",
        f"frequency   {meta['frequency (minutes)']} min  (start {meta.get('start_time') or 'unknown: day 0 = day-of-week 0'})",
        f"missing     {100.0 * zeros / max(cells, 1):.2f} % of readings equal the null value {null}",
        f"values      min {min(float(np.min(a)) for a in arrays):.3f}  max {max(float(np.max(a)) for a in arrays):.3f}",
        f"protocol    {meta['regular_settings']}",
    ]
    adj = load_graph(folder)
    if adj is None:
        lines.append("graph       none")
    else:
        s = graphs.graph_stats(adj)
        lines.append(f"graph       {s['nodes']} nodes, {s['edges']} edges, mean out-degree {s['mean_degree']:.2f}, "
                     f"{'symmetric' if s['symmetric'] else 'directed'}, {s['components']} connected component(s)")
    lines.append(f"coordinates {'yes' if load_coords(folder) is not None else 'no'}")
    if meta.get("source"):
        lines.append(f"source      {meta['source']}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m stvfm_plugin.data",
                                     description="Prepare datasets in the BasicTS 1.1.0 layout (datasets/<NAME>/).")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("prepare", help="raw files -> datasets/<NAME>/")
    p.add_argument("--preset", help=f"a standard dataset: {', '.join(PRESETS)}")
    p.add_argument("--src", help="folder holding the preset's raw files")
    p.add_argument("--data", help="signal file: CSV (time x nodes, optional header), .npz/.npy, .h5")
    p.add_argument("--format", choices=["csv", "npz", "h5"], help="signal format (default: from the suffix)")
    p.add_argument("--key", help="array name inside an .npz / key of an .h5 table")
    p.add_argument("--channels", help="channels of a [L, N, C] array, e.g. 0 or 0,2 (default 0)")
    p.add_argument("--header", action=argparse.BooleanOptionalAction, default=None,
                   help="the CSV's first row holds node ids (default: detected; numeric ids need --header)")
    p.add_argument("--graph", help="adjacency: dense CSV, edge list from,to,cost, or DCRNN adj_mx.pkl")
    p.add_argument("--graph-format", choices=["dense", "edges", "edges-gaussian", "pkl"],
                   help="edges: 0/1 directed connectivity (BasicTS's PEMS); edges-gaussian: Gaussian kernel of distances")
    p.add_argument("--graph-ids", action="store_true", help="the edge list names sensor ids (the CSV header), not indices")
    p.add_argument("--coords", help="CSV with latitude/longitude (and sensor_id) columns")
    p.add_argument("--name", help="dataset name (folder name; default: the preset's)")
    p.add_argument("--start", help="time of the first step, e.g. 2012-03-01T00:00")
    p.add_argument("--step-minutes", type=int, help="minutes between steps")
    p.add_argument("--ratios", help="train,val,test split ratios, e.g. 0.6,0.2,0.2")
    p.add_argument("--null-val", type=float, help="value that marks a missing reading in the prepared set (default 0)")
    p.add_argument("--missing-marker", type=float, help="value in the raw file that means missing (mapped to --null-val)")
    p.add_argument("--nan-as-missing", action="store_true", help="treat NaN/inf in the raw file as missing readings")
    p.add_argument("--min-window", type=int, default=24, help="input + output length every split must hold (default 24)")
    p.add_argument("--out", default="datasets", help="root folder (default: datasets, as BasicTS expects)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing dataset")
    p.set_defaults(func=prepare_dataset)

    s = sub.add_parser("synth", help="generate a synthetic traffic set")
    s.add_argument("--like", help=f"copy the shape of a standard set: {', '.join(LIKE)}")
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
    s.add_argument("--out", default="datasets")
    s.add_argument("--overwrite", action="store_true")
    s.set_defaults(func=synth_command)

    i = sub.add_parser("info", help="describe a prepared set")
    i.add_argument("name", help="dataset name (under --out) or a dataset folder")
    i.add_argument("--out", default="datasets")
    i.set_defaults(func=lambda a: print(describe_dataset(
        Path(a.name) if Path(a.name, "meta.json").is_file() else Path(a.out) / a.name)))
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    return exit_status(lambda: args.func(args))
