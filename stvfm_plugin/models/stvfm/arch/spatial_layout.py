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


def node_cells(num_nodes: int, layout: str, adj: Optional[np.ndarray], coords: Optional[np.ndarray],
               grid_hw: Optional[Tuple[int, int]] = None) -> Tuple[np.ndarray, Tuple[int, int], str]:
    """Cell of every node on a grid of graph nodes (default: the near-square one that holds them).

    Returns:
        cells `[N]`, `(H, W)` and the layout actually used (`auto` resolves to coords, spectral or identity).
    """
    height, width = grid_hw or grid_size(num_nodes)
    if height * width < num_nodes:
        raise ValueError(f"A {height} x {width} grid cannot hold {num_nodes} nodes.")
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


def token_grid_size(num_nodes: int, patch: int, grid_shape: Optional[Sequence[int]] = None) -> Tuple[int, int]:
    """`(H, W)` of the token grid when each token holds a `patch x patch` block of cells.

    A grid dataset `(Hg, Wg)` is cut into `ceil(Hg / p) x ceil(Wg / p)` patches; graph nodes get the
    near-square token grid that holds `ceil(N / p^2)` tokens.
    """
    if grid_shape is not None:
        return math.ceil(int(grid_shape[0]) / patch), math.ceil(int(grid_shape[1]) / patch)
    return grid_size(math.ceil(num_nodes / patch ** 2))


def choose_patch_size(num_nodes: int, patch_size: int, max_tokens: Optional[int],
                      grid_shape: Optional[Sequence[int]] = None) -> int:
    """The smallest `p >= patch_size` whose token grid has at most `max_tokens` tokens (None: no bound)."""
    if patch_size < 1:
        raise ValueError(f"patch_size={patch_size}: give 1 or more.")
    if max_tokens is not None and max_tokens < 1:
        raise ValueError(f"max_tokens={max_tokens}: give 1 or more (or None for no bound).")
    p = patch_size
    while max_tokens is not None and math.prod(token_grid_size(num_nodes, p, grid_shape)) > max_tokens:
        p += 1
    return p


def patch_index(node_grid: np.ndarray, patch: int, empty: int) -> np.ndarray:
    """Group a grid of node indices into `patch x patch` tokens.

    Shapes:
        node_grid: [Hn, Wn] (`empty` marks a cell without a node) -> index [S, p * p], S = ceil(Hn/p) * ceil(Wn/p),
        slot `(r % p) * p + c % p` of token `(r // p) * ceil(Wn / p) + c // p` holds node_grid[r, c]
    """
    hn, wn = node_grid.shape
    height, width = math.ceil(hn / patch), math.ceil(wn / patch)
    padded = np.full((height * patch, width * patch), empty, dtype=np.int64)
    padded[:hn, :wn] = node_grid
    return rearrange(padded, "(h p1) (w p2) -> (h w) (p1 p2)", p1=patch, p2=patch)  # [S, p * p]


class SpatialLayout(nn.Module):
    """Maps a series of `N` spatial points to `S = H * W` tokens and back; each token holds `p x p` cells.

    Graph nodes are first placed on a grid of cells (`layout`); a regular-grid dataset (`grid_shape`) is
    its own grid of cells. Then each `p x p` block of cells becomes one token, so a token holds
    `K = p * p` slots (`p = 1`: one node per token). Slots without a node are empty: they read 0, are
    flagged in `slot_valid` and never reach the output. `p` is raised from `patch_size` until the token
    grid has at most `max_tokens` tokens. The mapping is computed once and stored in buffers.

    Args:
        num_nodes: Number of spatial points `N`.
        layout: `auto`, `coords`, `spectral` or `identity` (graph datasets).
        adj: Adjacency `[N, N]` (for `spectral`).
        coords: Node coordinates `[N, 2]`, latitude and longitude (for `coords`).
        grid_shape: `(Hg, Wg)` of a regular-grid dataset (`N = Hg * Wg`, row-major).
        patch_size: Smallest token side `p` in cells.
        max_tokens: Upper bound on `S` (None: none).
        channels: Series per grid cell (`prepare`'s channels side by side: `grid_shape` is then `Hg x (W * C)`); only
            the log's description reads it.
    """

    def __init__(self, num_nodes: int, layout: str = "auto", adj: Optional[np.ndarray] = None,
                 coords: Optional[np.ndarray] = None, grid_shape: Optional[Sequence[int]] = None,
                 patch_size: int = 1, max_tokens: Optional[int] = None, channels: int = 1) -> None:
        super().__init__()
        p = choose_patch_size(num_nodes, patch_size, max_tokens, grid_shape)
        height, width = token_grid_size(num_nodes, p, grid_shape)
        if grid_shape is not None:
            hg, wg = int(grid_shape[0]), int(grid_shape[1])
            if hg * wg != num_nodes:
                raise ValueError(f"grid_shape {hg} x {wg} does not hold {num_nodes} nodes.")
            node_grid = np.arange(num_nodes).reshape(hg, wg)  # [Hg, Wg]
            self.kind = f"grid {hg}x{wg}" if channels == 1 else (
                f"grid {hg}x{wg // channels} cells x {channels} channels ({hg}x{wg} series, each cell's channels side "
                "by side)")
        else:
            cells, (hn, wn), self.kind = node_cells(num_nodes, layout, adj, coords, (height * p, width * p))
            node_grid = np.full(hn * wn, num_nodes, dtype=np.int64)
            node_grid[cells] = np.arange(num_nodes)
            node_grid = node_grid.reshape(hn, wn)  # [H * p, W * p]
        index = patch_index(node_grid, p, empty=num_nodes)  # [S, K]
        self.num_nodes, self.grid_hw, self.patch_size = num_nodes, (height, width), p
        self.requested_patch_size, self.max_tokens = patch_size, max_tokens
        self.cell_size = index.shape[1]
        flat = index.reshape(-1)
        position = np.empty(num_nodes, dtype=np.int64)
        position[flat[flat < num_nodes]] = np.flatnonzero(flat < num_nodes)
        self.register_buffer("index", torch.from_numpy(index), persistent=False)  # [S, K]
        self.register_buffer("position", torch.from_numpy(position), persistent=False)  # [N] in S * K
        self.register_buffer("node_token", torch.from_numpy(position // self.cell_size), persistent=False)  # [N] in S
        self.register_buffer("slot_valid", torch.from_numpy(index < num_nodes), persistent=False)  # [S, K]
        self.register_buffer("cell_valid", self.slot_valid.any(dim=1), persistent=False)  # [S]

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

    def describe(self) -> str:
        """One line for the log: the token grid, nodes per token and how `p` was chosen."""
        h, w = self.grid_hw
        p = self.patch_size
        why = (f", raised from patch_size={self.requested_patch_size} to fit max_tokens={self.max_tokens}"
               if p != self.requested_patch_size else "")
        return (f"{h} x {w} tokens ({int(self.cell_valid.sum())} used), {p} x {p} cells per token{why}; "
                f"{self.num_nodes} nodes in {self.num_cells * self.cell_size} slots; layout {self.kind}")

    def extra_repr(self) -> str:
        return self.describe()
