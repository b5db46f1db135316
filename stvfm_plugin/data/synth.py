"""A synthetic traffic generator: structured, graph-coupled, deterministic by seed.

The signal is traffic flow (vehicles per step) on a road-like graph:

- a daily profile with morning and evening rush hours and a weekly factor (quieter weekends);
- a per-node scale (busy and quiet roads) and a per-node rush-hour phase;
- congestion that starts at random nodes around rush hours and spreads downstream along the
  graph's edges with a delay of a few steps, reducing the flow where it passes;
- multiplicative sensor noise and a share of missing readings (zeros), partly as outages of
  consecutive steps.

Synthetic sets are named by what they are (`Synth64n14d5m`: 64 nodes, 14 days, 5-minute steps; `synthetic_name`),
so that two different sets never share a folder; `synth_dataset` writes one in the BasicTS layout.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from scipy import sparse
from scipy.spatial import cKDTree

from ..errors import UserError
from .graph import read_graph_file
from .layout import DatasetSpec, write_dataset


@dataclass
class SynthOptions:
    """Sizes and knobs of the generator (all have demo-sized defaults)."""

    num_nodes: int = 64
    num_steps: int = 288 * 14
    step_minutes: int = 5
    seed: int = 0
    missing_share: float = 0.02
    noise: float = 0.05
    neighbours: int = 2
    propagation_delay: int = 2
    congestion_rate: float = 0.02


def road_graph(num_nodes: int, neighbours: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A road-like graph: nodes scattered on a plane, each linked both ways to its nearest neighbours.

    Returns:
        0/1 adjacency float32 `[N, N]` and coordinates `[N, 2]` (pseudo latitude, longitude).
    """
    coords = rng.uniform(0.0, 1.0, size=(num_nodes, 2))
    adj = np.zeros((num_nodes, num_nodes), dtype=np.float32)
    k = min(neighbours, num_nodes - 1)
    if k > 0:
        _, nearest = cKDTree(coords).query(coords, k=k + 1)  # [N, k + 1]: each point itself, then its k nearest
        rows = np.repeat(np.arange(num_nodes), k)
        adj[rows, nearest[:, 1:].ravel()] = 1.0
        adj = np.maximum(adj, adj.T)
    return adj, np.column_stack([34.0 + 0.2 * coords[:, 0], -118.4 + 0.2 * coords[:, 1]])


def daily_profile(minutes: np.ndarray, phase: np.ndarray) -> np.ndarray:
    """Relative demand by minute of day, `[L, N]`: night trough, 8:00 and 17:30 peaks."""
    hours = (minutes[:, None] / 60.0 + phase[None, :]) % 24.0
    base = 0.25 + 0.45 * np.exp(-((hours - 13.0) / 5.0) ** 2)
    morning = 0.55 * np.exp(-((hours - 8.0) / 1.2) ** 2)
    evening = 0.65 * np.exp(-((hours - 17.5) / 1.5) ** 2)
    return base + morning + evening


def generate(options: SynthOptions, adj: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Generate a signal.

    Args:
        options: Sizes and knobs.
        adj: A given graph `[N, N]` (its N wins over `options.num_nodes`), or None to build one.

    Returns:
        flow float32 `[L, N]` (missing readings are 0), the 0/1 adjacency used, and coordinates
        (None when the graph was given).
    """
    if options.num_steps < 2 or options.num_nodes < 1 and adj is None:
        raise UserError("The synthetic generator needs at least 2 steps and 1 node.")
    if not 0.0 <= options.missing_share < 1.0:
        raise UserError(f"--missing must be in [0, 1); got {options.missing_share}.")
    rng = np.random.default_rng(options.seed)
    coords = None
    if adj is None:
        adj, coords = road_graph(options.num_nodes, options.neighbours, rng)
    links = sparse.csr_matrix(np.asarray(adj) != 0, dtype=np.float64)
    links.setdiag(0.0)
    links.eliminate_zeros()
    num_nodes, num_steps = links.shape[0], options.num_steps

    elapsed = np.arange(num_steps, dtype=np.int64) * options.step_minutes  # minutes since the start (any step size)
    minutes, day = elapsed % (24 * 60), elapsed // (24 * 60)
    weekly = np.where(day % 7 >= 5, 0.75, 1.0)  # day 5, 6 of each week: weekend
    scale = rng.lognormal(mean=np.log(300.0), sigma=0.4, size=num_nodes)
    phase = rng.normal(0.0, 0.3, size=num_nodes)
    demand = daily_profile(minutes, phase) * weekly[:, None]  # [L, N]

    # congestion: seeded at random nodes (more often at rush hours), carried downstream with a delay
    out_degree = np.asarray(links.sum(axis=1)).ravel()
    inverse = np.divide(1.0, out_degree, out=np.zeros_like(out_degree), where=out_degree > 0)
    spread = (sparse.diags(inverse) @ links).T.tocsr()  # [N, N] in <- out, sparse (graphs of any size)
    rush = np.exp(-((minutes / 60.0 - 8.0) / 1.0) ** 2) + np.exp(-((minutes / 60.0 - 17.5) / 1.2) ** 2)
    seeds = rng.random((num_steps, num_nodes)) < options.congestion_rate * rush[:, None]
    delay = max(1, options.propagation_delay)
    congestion = np.zeros((num_steps, num_nodes))
    for i in range(num_steps):
        carried = spread @ congestion[i - delay] if i >= delay else 0.0
        own = 0.93 * congestion[i - 1] if i >= 1 else 0.0
        congestion[i] = np.clip(own + 0.6 * carried + seeds[i] * rng.uniform(0.4, 1.0, num_nodes), 0.0, 1.0)

    flow = scale[None, :] * demand * (1.0 - 0.6 * congestion)
    flow *= 1.0 + options.noise * rng.standard_normal(flow.shape)
    flow = np.maximum(flow, 1.0)

    if options.missing_share > 0:
        missing = rng.random(flow.shape) < options.missing_share / 2
        outages = max(1, int(options.missing_share / 2 * num_steps * num_nodes / 12))
        for node, begin in zip(rng.integers(0, num_nodes, outages), rng.integers(0, num_steps, outages)):
            missing[begin:begin + 12, node] = True
        flow[missing] = 0.0
    return flow.astype(np.float32), np.asarray(adj, dtype=np.float32), coords


#: the demo set of the `*_Demo.py` configs and the tests: 64 road sensors, 14 days of 5-minute steps
DEMO = SynthOptions(num_nodes=64, num_steps=288 * 14, step_minutes=5, seed=0)
_SYNTH_NAME = re.compile(r"^Synth(\d+)n(\d+)d(\d+)m(?:-s(\d+))?$")


def synthetic_name(options: SynthOptions) -> str:
    """The dataset name of a synthetic set, e.g. `Synth64n14d5m` (seed 0) or `Synth64n14d5m-s3`."""
    steps_per_day = 24 * 60 // options.step_minutes
    if (24 * 60) % options.step_minutes or options.num_steps % steps_per_day:
        raise UserError(f"A named synthetic set needs whole days of steps that divide a day; got {options.num_steps} "
                        f"steps of {options.step_minutes} minutes.")
    seed = f"-s{options.seed}" if options.seed else ""
    return f"Synth{options.num_nodes}n{options.num_steps // steps_per_day}d{options.step_minutes}m{seed}"


def synthetic_options(name: str) -> Optional[SynthOptions]:
    """The generator options a synthetic set's name stands for (None for other names)."""
    match = _SYNTH_NAME.match(name or "")
    if not match:
        return None
    nodes, days, minutes, seed = match.groups()
    minutes = int(minutes)
    if minutes < 1 or (24 * 60) % minutes:
        return None
    return SynthOptions(num_nodes=int(nodes), num_steps=int(days) * (24 * 60 // minutes), step_minutes=minutes,
                        seed=int(seed or 0))


DEMO_NAME = synthetic_name(DEMO)


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
                               "graph": Path(graph_path).name if graph_path else "generated road graph"})
    return write_dataset(root, spec, flow, adj, coords, overwrite=overwrite)
