"""A synthetic city grid: trip starts and ends per cell and step, with hot spots that move through the day.

- a few hot spots (a business district, a station, a night-life area) with their own daily profiles, moving along
  short paths through the day, so that demand flows between cells rather than staying put;
- the day's rhythm (morning and evening peaks, quiet nights) and the week's (quieter weekends);
- channel `start` (trips that start in a cell) and channel `end` (trips that end there): ends are the starts of an hour
  earlier, carried towards the next hot spot;
- Poisson counts, so that quiet cells hold many real zeros (no reading is missing).

`synth --grid 8x6` writes one as `<root>/<name>/` in the BasicTS layout: one series per (cell, channel), the grid's
shape and 4-neighbour graph, time stamps from 2024-01-01 (a Monday).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from .graph import grid_adjacency, grid_coords
from .layout import DatasetSpec, channels_as_series, write_dataset
from .readers import grid_signal

CHANNELS = ("start", "end")


@dataclass
class GridOptions:
    """Sizes and knobs of the grid generator."""

    height: int = 8
    width: int = 6
    num_steps: int = 24 * 7 * 6
    step_minutes: int = 60
    seed: int = 0
    hot_spots: int = 3
    peak: float = 60.0


def generate_grid(options: GridOptions) -> np.ndarray:
    """Counts `[T, 2, H, W]` (time, channel start / end, grid row, grid column)."""
    rng = np.random.default_rng(options.seed)
    hours = np.arange(options.num_steps) * options.step_minutes / 60.0  # [T]
    day_hour, weekday = hours % 24, (hours // 24).astype(int) % 7
    rows, cols = np.meshgrid(np.arange(options.height), np.arange(options.width), indexing="ij")  # [H, W]
    starts = np.zeros((options.num_steps, options.height, options.width))
    for _ in range(options.hot_spots):
        origin = rng.uniform([0, 0], [options.height - 1, options.width - 1])
        drift = rng.normal(0, 0.15 * min(options.height, options.width), size=2)
        peak_hour, spread = rng.uniform(7, 20), rng.uniform(1.5, 4.0)
        radius = rng.uniform(0.8, 1.8)
        daily = np.exp(-0.5 * ((day_hour - peak_hour + 12) % 24 - 12) ** 2 / spread ** 2)  # [T]
        weekly = np.where(weekday >= 5, rng.uniform(0.4, 0.8), 1.0)
        place = origin[None] + drift[None] * np.sin(2 * np.pi * day_hour / 24)[:, None]  # [T, 2]: where it is
        bump = np.exp(-0.5 * ((rows[None] - place[:, 0, None, None]) ** 2 + (cols[None] - place[:, 1, None, None]) ** 2)
                      / radius ** 2)  # [T, H, W]
        starts += options.peak * (daily * weekly)[:, None, None] * bump
    base = 0.05 * options.peak * (0.3 + 0.7 * np.exp(-0.5 * ((day_hour - 14) / 5) ** 2))[:, None, None]
    starts += base
    ends = np.roll(starts, 1, axis=0) * rng.uniform(0.7, 1.3, size=(1, options.height, options.width))
    return rng.poisson(np.stack([starts, ends], axis=1)).astype(np.float64)  # [T, 2, H, W]


def synth_grid_dataset(root: Path, name: str, options: GridOptions, ratios: Sequence[float] = (0.6, 0.2, 0.2),
                       overwrite: bool = False, min_window: int = 24) -> Path:
    """Generate a synthetic grid and write it as `<root>/<name>/` (one series per cell and channel)."""
    cells, shape, ids = grid_signal(generate_grid(options), "TCHW", name)  # [T, H*W, 2]
    data, ids, grid, adj, coords = channels_as_series(cells, ids, shape, grid_adjacency(*shape), grid_coords(*shape),
                                                      list(CHANNELS))
    spec = DatasetSpec(name=name, step_minutes=options.step_minutes, ratios=ratios, null_val=None,
                       start=dt.datetime(2024, 1, 1), domain="synthetic trip counts on a grid", min_window=min_window,
                       source={"synthetic": {**vars(options), "kind": "grid"}}, grid_shape=grid, node_ids=ids,
                       channel_names=list(CHANNELS))
    return write_dataset(root, spec, data, adj, coords, overwrite=overwrite)
