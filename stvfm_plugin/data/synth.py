"""A synthetic traffic generator: structured, graph-coupled, deterministic by seed.

The signal is traffic flow (vehicles per step) on a road-like graph:

- a daily profile with morning and evening rush hours and a weekly factor (quieter weekends);
- a per-node scale (busy and quiet roads) and a per-node rush-hour phase;
- congestion that starts at random nodes around rush hours and spreads downstream along the
  graph's edges with a delay of a few steps, reducing the flow where it passes;
- multiplicative sensor noise and a share of missing readings (zeros), partly as outages of
  consecutive steps.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.spatial import cKDTree

from ..errors import UserError


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
