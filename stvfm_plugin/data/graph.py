"""Road graphs: dense adjacency CSVs, PEMS edge lists, DCRNN pickles, sensor coordinates."""
from __future__ import annotations

import csv
import pickle
from pathlib import Path
from typing import Literal, Optional, Sequence

import numpy as np

from ..errors import UserError
from .readers import read_csv_matrix


def read_dense_adj(path: Path) -> np.ndarray:
    """A square adjacency matrix from a CSV file without header: float32 `[N, N]`."""
    adj, _ = read_csv_matrix(path, header=False)
    if adj.shape[0] != adj.shape[1]:
        raise UserError(f"{path}: an adjacency matrix must be square; got {adj.shape[0]} x {adj.shape[1]}.")
    return adj.astype(np.float32)


def read_edge_list(path: Path, num_nodes: int, kind: Literal["connectivity", "gaussian"] = "connectivity",
                   node_ids: Optional[Sequence[str]] = None, threshold: float = 0.1) -> np.ndarray:
    """An adjacency from a `from,to,cost` edge list (PEMS distance files).

    Args:
        path: CSV with a header and columns from, to, cost.
        num_nodes: Number of nodes N.
        kind: `connectivity` gives directed 0/1 edges as BasicTS's PEMS preparation does;
            `gaussian` gives `exp(-(d / std)^2)` of the distances (std over all edges), entries
            below `threshold` dropped, as DCRNN does.
        node_ids: Sensor ids in node order, when the file names sensors rather than indices.
        threshold: Sparsity threshold of the Gaussian kernel.

    Returns:
        float32 `[N, N]`.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path} does not exist.")
    index = {str(s): i for i, s in enumerate(node_ids)} if node_ids is not None else None
    edges = []
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        for line_no, row in enumerate(reader, start=1):
            if not row or (line_no == 1 and not row[0].strip().lstrip("-").replace(".", "").isdigit()):
                continue  # blank line or header
            if len(row) < 3:
                raise UserError(f"{path}: line {line_no} must be from,to,cost; got {row}.")
            try:
                a, b = ((index[c.strip()] if index else int(float(c))) for c in row[:2])
                cost = float(row[2])
            except (KeyError, ValueError):
                raise UserError(f"{path}: line {line_no} ({','.join(row)}) names an unknown node or a "
                                "non-numeric cost.") from None
            if not (0 <= a < num_nodes and 0 <= b < num_nodes):
                raise UserError(f"{path}: line {line_no} names node {max(a, b)}, but the signal has only "
                                f"{num_nodes} nodes (0..{num_nodes - 1}).")
            edges.append((a, b, cost))
    if not edges:
        raise UserError(f"{path} holds no edges.")
    adj = np.zeros((num_nodes, num_nodes), dtype=np.float32)
    if kind == "connectivity":
        for a, b, _ in edges:
            adj[a, b] = 1.0
    elif kind == "gaussian":
        costs = np.array([c for _, _, c in edges])
        std = costs.std() or 1.0
        for a, b, c in edges:
            w = np.exp(-((c / std) ** 2))
            adj[a, b] = w if w >= threshold else 0.0
        np.fill_diagonal(adj, 1.0)
    else:
        raise UserError(f"Unknown edge-list weighting {kind!r}; use 'connectivity' or 'gaussian'.")
    return adj


def read_dcrnn_pkl(path: Path) -> tuple[np.ndarray, Optional[list[str]]]:
    """A DCRNN `adj_mx.pkl`: `[sensor_ids, id->index, adj]`, or a bare matrix.

    Returns:
        The adjacency float32 `[N, N]` and the sensor ids (None for a bare matrix).
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path} does not exist.")
    with open(path, "rb") as f:
        try:
            obj = pickle.load(f)
        except UnicodeDecodeError:
            f.seek(0)
            obj = pickle.load(f, encoding="latin1")
    if isinstance(obj, (list, tuple)) and len(obj) == 3:
        return np.asarray(obj[2], dtype=np.float32), [str(s) for s in obj[0]]
    return np.asarray(obj, dtype=np.float32), None


def read_coords(path: Path, node_ids: Optional[Sequence[str]] = None) -> np.ndarray:
    """Sensor coordinates from a CSV with `latitude`/`longitude` columns (and `sensor_id`).

    Rows are matched to `node_ids` through the `sensor_id` column when both exist, else taken in
    file order. Returns float64 `[N, 2]` (latitude, longitude).
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path} does not exist.")
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise UserError(f"{path} is empty.")
    columns = {c.lower().strip(): c for c in rows[0]}
    lat = next((columns[c] for c in ("latitude", "lat") if c in columns), None)
    lon = next((columns[c] for c in ("longitude", "lon", "lng") if c in columns), None)
    if lat is None or lon is None:
        raise UserError(f"{path}: coordinates need latitude and longitude columns; found {list(rows[0])}.")
    sid = columns.get("sensor_id")
    if node_ids is not None and sid is not None:
        by_id = {str(r[sid]).strip(): r for r in rows}
        missing = [s for s in node_ids if str(s) not in by_id]
        if missing:
            raise UserError(f"{path} has no coordinates for sensors {missing[:5]}"
                            f"{' ...' if len(missing) > 5 else ''}.")
        rows = [by_id[str(s)] for s in node_ids]
    values = []
    for line, r in enumerate(rows, start=2):
        try:
            values.append([float(r[lat]), float(r[lon])])
        except (TypeError, ValueError):
            raise UserError(f"{path}: line {line} has a non-numeric coordinate ({r[lat]!r}, {r[lon]!r}).") from None
    coords = np.array(values, dtype=np.float64)
    if not np.isfinite(coords).all():
        raise UserError(f"{path}: coordinates must be finite numbers; found NaN/inf.")
    return coords


def graph_stats(adj: np.ndarray) -> dict:
    """Nodes, directed edges (non-zero off-diagonal entries), mean degree, connected components."""
    n = adj.shape[0]
    off = adj.copy()
    np.fill_diagonal(off, 0)
    edges = int(np.count_nonzero(off))
    return {
        "nodes": n,
        "edges": edges,
        "mean_degree": edges / max(n, 1),
        "symmetric": bool(np.allclose(adj, adj.T)),
        "components": len(connected_components(adj)),
    }


def connected_components(adj: np.ndarray) -> list[np.ndarray]:
    """Weakly connected components, largest first, each as sorted node indices."""
    n = adj.shape[0]
    linked = (adj != 0) | (adj.T != 0)
    seen = np.zeros(n, dtype=bool)
    comps = []
    for s in range(n):
        if seen[s]:
            continue
        stack, members = [s], []
        seen[s] = True
        while stack:
            v = stack.pop()
            members.append(v)
            for u in np.flatnonzero(linked[v] & ~seen):
                seen[u] = True
                stack.append(u)
        comps.append(np.sort(np.array(members)))
    comps.sort(key=lambda c: (-len(c), c[0]))
    return comps
