"""Spatial layout: spatial cells (graph nodes or grid patches) on a near-square 2-D token grid.

A frozen ViT has a 2-D positional prior. Graph nodes are placed on an `H x W` grid so that
neighbouring nodes land on neighbouring cells: by sensor coordinates when the dataset has them,
else by a spectral layout of the adjacency (Laplacian eigenvectors of the largest connected
component; other components follow it), else in index order. Regular grids (`grid_shape`) are cut
into `p x p` patches, one per cell. Cells left empty are marked invalid (they get a pad token).
"""
from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple

import numpy as np
import torch
from einops import rearrange
from torch import nn

from ....data.graph import connected_components

LAYOUTS = ("auto", "coords", "spectral", "identity")


def grid_size(num_cells: int) -> Tuple[int, int]:
    """A near-square `(H, W)` with `H * W >= num_cells`."""
    height = max(1, math.ceil(math.sqrt(num_cells)))
    return height, max(1, math.ceil(num_cells / height))


def spectral_positions(adj: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """2-D positions of the largest connected component from its Laplacian's 2nd and 3rd eigenvectors.

    Returns:
        The component's node indices and their positions `[n, 2]`.
    """
    sym = np.maximum(np.abs(adj), np.abs(adj).T).astype(np.float64)
    np.fill_diagonal(sym, 0.0)
    component = connected_components(sym)[0]
    sub = sym[np.ix_(component, component)]
    if len(component) < 3:
        return component, np.stack([np.arange(len(component), dtype=float)] * 2, axis=1)
    degree = sub.sum(axis=1)
    inv_sqrt = 1.0 / np.sqrt(np.maximum(degree, 1e-12))
    laplacian = np.eye(len(component)) - inv_sqrt[:, None] * sub * inv_sqrt[None, :]
    _, vectors = np.linalg.eigh(laplacian)
    positions = vectors[:, 1:3] * inv_sqrt[:, None]
    positions = positions * np.sign(positions[np.abs(positions).argmax(axis=0), [0, 1]])  # fixed orientation
    return component, positions


def place_on_grid(positions: np.ndarray, height: int, width: int) -> np.ndarray:
    """Row-major cell of each point: split by the 1st coordinate into rows, then order by the 2nd.

    Shapes:
        positions: [n, 2] -> cells [n] (distinct, all < height * width)
    """
    n = len(positions)
    rows = np.lexsort((positions[:, 1], positions[:, 0]))
    cells = np.empty(n, dtype=np.int64)
    for r, chunk in enumerate(np.array_split(rows, math.ceil(n / width)) if n else []):
        order = chunk[np.argsort(positions[chunk, 1], kind="stable")]
        cells[order] = r * width + np.arange(len(order))
    return cells


def node_cells(num_nodes: int, layout: str, adj: Optional[np.ndarray], coords: Optional[np.ndarray]
               ) -> Tuple[np.ndarray, Tuple[int, int], str]:
    """Cell of every node on a near-square grid, for a graph dataset.

    Returns:
        cells `[N]`, `(H, W)` and the layout actually used (`auto` resolves to coords, spectral or identity).
    """
    height, width = grid_size(num_nodes)
    if layout == "auto":
        layout = "coords" if coords is not None else ("spectral" if adj is not None and num_nodes > 2 else "identity")
    if layout == "identity":
        return np.arange(num_nodes), (height, width), layout
    if layout == "coords":
        if coords is None:
            raise ValueError("layout='coords' needs node coordinates (coords.npy in the dataset folder).")
        # latitude grows northwards: north at the top row
        return place_on_grid(np.column_stack([-coords[:, 0], coords[:, 1]]), height, width), (height, width), layout
    if adj is None:
        raise ValueError("layout='spectral' needs the dataset's adjacency (adj_mx.pkl in the dataset folder).")
    component, positions = spectral_positions(adj)
    cells = np.empty(num_nodes, dtype=np.int64)
    cells[component] = place_on_grid(positions, height, width)
    rest = np.setdiff1d(np.arange(num_nodes), component)
    free = np.setdiff1d(np.arange(height * width), cells[component])
    cells[rest] = free[:len(rest)]
    return cells, (height, width), layout


class SpatialLayout(nn.Module):
    """Maps a series of `N` spatial points to `S = H * W` token cells and back.

    Each cell holds `K` points (`K = 1` for graph nodes, `K = p * p` for grid patches). The mapping is
    computed once at construction and stored in buffers.

    Args:
        num_nodes: Number of spatial points `N`.
        layout: `auto`, `coords`, `spectral` or `identity` (graph datasets).
        adj: Adjacency `[N, N]` (for `spectral`).
        coords: Node coordinates `[N, 2]`, latitude and longitude (for `coords`).
        grid_shape: `(Hg, Wg)` of a regular-grid dataset (`N = Hg * Wg`, row-major); then cells are patches.
        patch_size: Patch side `p` on a grid dataset.
    """

    def __init__(self, num_nodes: int, layout: str = "auto", adj: Optional[np.ndarray] = None,
                 coords: Optional[np.ndarray] = None, grid_shape: Optional[Sequence[int]] = None,
                 patch_size: int = 1) -> None:
        super().__init__()
        if grid_shape is not None:
            hg, wg = int(grid_shape[0]), int(grid_shape[1])
            if hg * wg != num_nodes:
                raise ValueError(f"grid_shape {hg} x {wg} does not hold {num_nodes} nodes.")
            p = patch_size
            height, width = math.ceil(hg / p), math.ceil(wg / p)
            index = np.full((height * width, p * p), num_nodes, dtype=np.int64)  # num_nodes = empty slot
            for r in range(hg):
                for c in range(wg):
                    index[(r // p) * width + c // p, (r % p) * p + c % p] = r * wg + c
            self.kind = f"grid patches {p}x{p} of {hg}x{wg}"
        else:
            cells, (height, width), used = node_cells(num_nodes, layout, adj, coords)
            index = np.full((height * width, 1), num_nodes, dtype=np.int64)
            index[cells, 0] = np.arange(num_nodes)
            self.kind = used
        self.num_nodes, self.grid_hw = num_nodes, (height, width)
        self.cell_size = index.shape[1]
        flat = index.reshape(-1)
        position = np.empty(num_nodes, dtype=np.int64)
        position[flat[flat < num_nodes]] = np.flatnonzero(flat < num_nodes)
        self.register_buffer("index", torch.from_numpy(index), persistent=False)  # [S, K]
        self.register_buffer("position", torch.from_numpy(position), persistent=False)  # [N] in S * K
        self.register_buffer("cell_valid", torch.from_numpy((index < num_nodes).any(axis=1)), persistent=False)

    @property
    def num_cells(self) -> int:
        return self.index.shape[0]

    def to_cells(self, x: torch.Tensor) -> torch.Tensor:
        """Shapes: x [B, T, N] -> [B, S, T * K] (empty slots hold 0)."""
        padded = torch.cat([x, x.new_zeros(x.shape[0], x.shape[1], 1)], dim=2)  # [B, T, N + 1]
        cells = padded[:, :, self.index]  # [B, T, S, K]
        return rearrange(cells, "b t s k -> b s (t k)")

    def from_cells(self, y: torch.Tensor) -> torch.Tensor:
        """Shapes: y [B, S, T * K] -> [B, T, N]."""
        y = rearrange(y, "b s (t k) -> b t (s k)", k=self.cell_size)  # [B, T, S * K]
        return y[:, :, self.position]

    def extra_repr(self) -> str:
        h, w = self.grid_hw
        return f"{self.kind}, grid {h}x{w}, {int(self.cell_valid.sum())}/{h * w} cells used"
