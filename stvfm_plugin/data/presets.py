"""Named presets: where the standard datasets' raw files are and which settings they use."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..errors import UserError
from . import graph as graphs
from . import readers
from .layout import DatasetSpec, raw_files


@dataclass(frozen=True)
class Preset:
    """A standard dataset: raw file names (first match wins) and protocol settings."""

    name: str
    data_files: Sequence[str]
    data_format: str = field(metadata={"help": "csv | npz | h5"})
    graph_files: Sequence[str] = ()
    graph_format: Optional[str] = field(default=None, metadata={"help": "dense | edges | pkl"})
    coords_files: Sequence[str] = ()
    id_files: Sequence[str] = ()
    csv_header: bool = field(default=False, metadata={"help": "the signal CSV's first row holds sensor ids"})
    step_minutes: int = 5
    ratios: Sequence[float] = (0.6, 0.2, 0.2)
    null_val: float = 0.0
    start: Optional[dt.datetime] = None
    domain: str = "traffic"
    note: str = ""
    num_nodes: Optional[int] = field(default=None, metadata={"help": "Nodes of the prepared set (synth --like)."})
    num_steps: Optional[int] = field(default=None, metadata={"help": "Steps of the prepared set (synth --like)."})
    years: Sequence[int] = field(default=(), metadata={
        "help": "Years of a set published one file a year (`{yy}` in `data_files`), all by default (--years)."})
    repeats: Optional[str] = field(default=None, metadata={"help": "Rule for repeated time stamps (--repeats)."})
    fill_gaps: bool = field(default=False, metadata={"help": "Missing hours become masked readings (--fill-gaps)."})
    sort_time: bool = field(default=False, metadata={"help": "Sort rows out of time order (--sort-time)."})
    channel_names: Sequence[str] = field(default=(), metadata={"help": "Names of the raw file's channels."})

    def find(self, src: Path, candidates: Sequence[str], role: str, required: bool = True) -> Optional[Path]:
        for name in candidates:
            if (src / name).is_file():
                return src / name
        if required:
            raise UserError(f"Preset {self.name}: no {role} file in {src}; expected one of {list(candidates)}. "
                            f"Point --src at the folder that holds the raw {self.name} files"
                            f"{' (' + self.note + ')' if self.note else ''}.")
        return None


def _pems(n: int, nodes: int, steps: int, note: str) -> Preset:
    return Preset(
        name=f"PEMS0{n}", data_files=[f"PEMS0{n}.npz", f"pems0{n}.npz"], data_format="npz",
        graph_files=[f"PEMS0{n}.csv", f"pems0{n}_distance.csv", "distance.csv"], graph_format="edges",
        id_files=[f"PEMS0{n}.txt"] if n == 3 else (), note=note, num_nodes=nodes, num_steps=steps)


#: METR-LA and PEMS-BAY keep their time index in the .h5 file (local clock times): any step it lacks (a clock-change hour,
#: an outage) becomes a missing reading (0, masked), counted in the log and meta.json, never a silent shift of the calendar
PRESETS: dict[str, Preset] = {p.name: p for p in [
    _pems(3, 358, 26208, "from the ASTGCN/ASTGNN release: PEMS03.npz, PEMS03.csv, PEMS03.txt"),
    _pems(4, 307, 16992, "from the ASTGCN/ASTGNN release: PEMS04.npz, PEMS04.csv"),
    _pems(7, 883, 28224, "from the ASTGCN/ASTGNN release: PEMS07.npz, PEMS07.csv"),
    _pems(8, 170, 17856, "from the ASTGCN/ASTGNN release: PEMS08.npz, PEMS08.csv"),
    Preset(name="METR-LA", data_files=["metr-la.h5", "METR-LA.h5"], data_format="h5",
           graph_files=["adj_mx.pkl", "adj_METR-LA.pkl", "adj_mx_la.pkl"], graph_format="pkl",
           coords_files=["graph_sensor_locations.csv"], ratios=(0.7, 0.1, 0.2), fill_gaps=True,
           note="from the DCRNN release: metr-la.h5, adj_mx.pkl", num_nodes=207, num_steps=34272),
    Preset(name="PEMS-BAY", data_files=["pems-bay.h5", "PEMS-BAY.h5"], data_format="h5",
           graph_files=["adj_mx_bay.pkl", "adj_PEMS-BAY.pkl"], graph_format="pkl",
           coords_files=["graph_sensor_locations_bay.csv"], ratios=(0.7, 0.1, 0.2), fill_gaps=True,
           note="from the DCRNN release: pems-bay.h5, adj_mx_bay.pkl", num_nodes=325, num_steps=52116),
    Preset(name="LosLoop", data_files=["los_speed.csv"], data_format="csv", csv_header=True,
           graph_files=["los_adj.csv"], graph_format="dense",
           coords_files=["metr_la_sensor_locations.csv"], start=dt.datetime(2012, 3, 1),
           note="from the T-GCN release: los_speed.csv, los_adj.csv", num_nodes=207, num_steps=2016),
    Preset(name="SZTaxi", data_files=["sz_taxi.npz", "SZ_taxi.npz"], data_format="npz",
           graph_files=["sz_adj.csv"], graph_format="dense", step_minutes=15,
           start=dt.datetime(2015, 1, 1),
           note="from the T-GCN / ST-CGCN release: sz_taxi.npz, sz_adj.csv", num_nodes=156, num_steps=2976),
    # TaxiNYC as STREED-Net published it: one file a year of [rows, 2, 16, 8] trip counts with `date` stamps. Zeros
    # are real counts, so missing hours are marked -1 (masked); an hour on two rows (the two monthly extracts that
    # hold its trips, one of them nearly or wholly empty) is their sum: every trip counted once.
    Preset(name="TaxiNYC", data_files=["NYC{yy}_Taxi_M16x8_T60_InOut.h5"], data_format="h5", step_minutes=60,
           null_val=-1.0, domain="taxi demand", years=(2010, 2011, 2012, 2013, 2014), repeats="sum", fill_gaps=True,
           sort_time=True, channel_names=("start", "end"), note="from STREED-Net's release: NYC10_Taxi_M16x8_T60_InOut.h5 ... NYC14_..."),
]}


def resolve_preset(name: str) -> Preset:
    """The preset called `name` (case-insensitive)."""
    for key, preset in PRESETS.items():
        if key.lower() == name.lower():
            return preset
    raise UserError(f"Unknown preset {name!r}. Presets: {', '.join(PRESETS)}.")


def parse_years(text: Optional[str], preset: Preset) -> Sequence[int]:
    """`--years 2014` / `2013-2014` / `2012,2014` -> the years of a preset published one file a year."""
    if not preset.years:
        if text:
            raise UserError(f"--years: preset {preset.name} is one file, not one a year; drop --years.")
        return ()
    if not text:
        return preset.years
    try:
        years = sorted({y for part in text.split(",") for y in (
            range(int(part.split("-")[0]), int(part.split("-")[1]) + 1) if "-" in part else [int(part)])})
    except (ValueError, IndexError):
        years = []
    if not years or not set(years) <= set(preset.years):
        raise UserError(f"--years {text!r}: give years of {preset.name} ({preset.years[0]}-{preset.years[-1]}), e.g. "
                        f"{preset.years[-1]} or {preset.years[-2]}-{preset.years[-1]}.")
    return years


def load_preset(preset: Preset, src: Path, name: Optional[str] = None, channels: Optional[Sequence[int]] = None,
                years: Optional[str] = None,
                ) -> tuple[DatasetSpec, readers.RawSignal, Optional[np.ndarray], Optional[np.ndarray]]:
    """Read a preset's raw files from `src`: returns the spec, signal, adjacency and coordinates."""
    src = Path(src)
    if not src.is_dir():
        raise UserError(f"--src {src} is not a folder. Point it at the folder that holds the raw "
                        f"{preset.name} files ({preset.note}).")
    chosen = parse_years(years, preset)
    if chosen:
        paths = [preset.find(src, [f.format(yy=f"{y % 100:02d}") for f in preset.data_files], f"{y} signal")
                 for y in chosen]
        parts = [readers.read_h5(path, channels=channels) for path in paths]
        signal = readers.RawSignal(np.concatenate([p.values for p in parts]), parts[0].ids,
                                   [s for p in parts for s in p.stamps], digit_stamps=True,
                                   grid_shape=parts[0].grid_shape)
        spec = DatasetSpec(
            name=name or preset.name, step_minutes=preset.step_minutes, ratios=preset.ratios, null_val=preset.null_val,
            domain=preset.domain, grid_shape=signal.grid_shape, node_ids=signal.ids,
            source={"preset": preset.name, "years": list(chosen), "files": raw_files(paths)})
        return spec, signal, None, None
    data_path = preset.find(src, preset.data_files, "signal")
    node_ids, start, stamps = None, preset.start, None
    if preset.data_format == "csv":
        data, node_ids = readers.read_csv_matrix(data_path, header=preset.csv_header)
    elif preset.data_format == "npz":
        data = readers.read_array(data_path, channels=channels)
    else:
        h5 = readers.read_h5(data_path)
        data, node_ids, stamps = h5.values, h5.ids, h5.stamps
    id_path = preset.find(src, preset.id_files, "sensor id", required=False) if preset.id_files else None
    if id_path is not None:
        node_ids = [line.strip() for line in id_path.read_text().split() if line.strip()]

    adj = None
    graph_path = preset.find(src, preset.graph_files, "graph") if preset.graph_files else None
    if graph_path is not None:
        if preset.graph_format == "dense":
            adj = graphs.read_dense_adj(graph_path)
        elif preset.graph_format == "edges":
            adj = graphs.read_edge_list(graph_path, data.shape[1], node_ids=node_ids, use_ids=id_path is not None)
        else:
            adj, pkl_ids = graphs.read_dcrnn_pkl(graph_path)
            if node_ids is not None and pkl_ids is not None and list(map(str, node_ids)) != pkl_ids:
                raise UserError(f"{graph_path}: its sensor order differs from the columns of {data_path}.")
    coords_path = preset.find(src, preset.coords_files, "coordinates", required=False)
    coords = graphs.read_coords(coords_path, node_ids) if coords_path is not None else None

    spec = DatasetSpec(
        name=name or preset.name, step_minutes=preset.step_minutes, ratios=preset.ratios,
        null_val=preset.null_val, start=start, domain=preset.domain,
        source={"preset": preset.name, "files": raw_files([data_path, graph_path, coords_path])},
        node_ids=[str(i) for i in node_ids] if node_ids is not None else None)
    return spec, readers.RawSignal(data, node_ids, stamps), adj, coords
