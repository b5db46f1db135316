"""Road graphs: dense adjacency CSVs, PEMS edge lists, DCRNN pickles, sensor coordinates."""
from __future__ import annotations

import csv
import pickle
from pathlib import Path
from typing import List, Literal, Optional, Sequence

import numpy as np

from ..errors import UserError
from . import readers
from .readers import csv_rows, is_number, read_csv_matrix, text_lines


def read_dense_adj(path: Path, node_ids: Optional[Sequence[str]] = None) -> np.ndarray:
    """A square adjacency matrix from a CSV file: float32 `[N, N]`.

    Plain numbers, or as pandas writes a labelled matrix: a header row of node ids (after an empty corner cell) and
    an index column of the same ids. Labelled rows are put in the header's order, and, when the signal has sensor ids
    (`node_ids`), the whole matrix in the signal's order.
    """
    rows = [[c.strip() for c in row] for row in csv_rows(Path(path))]
    if not rows:
        raise UserError(f"{path} is empty.")
    labelled = not all(is_number(c) for c in rows[0] if c) or rows[0][0] == ""
    if not labelled:
        adj, _ = read_csv_matrix(path, header=False)
        if adj.shape[0] != adj.shape[1]:
            raise UserError(f"{path}: an adjacency matrix must be square; got {adj.shape[0]} x {adj.shape[1]}.")
        return adj.astype(np.float32)
    columns = rows[0][1:] if rows[0][0] == "" or len(rows[0]) == len(rows[1]) else rows[0]
    index = [r[0] for r in rows[1:]]
    layout = ("Give a square matrix of numbers, or a labelled one as pandas writes it: a header row of node ids "
              "(after an empty corner cell) and an index column of the same ids.")
    if sorted(index) != sorted(columns) or len(set(columns)) != len(columns):
        raise UserError(f"{path}: the row labels {index[:5]}{' ...' if len(index) > 5 else ''} are not the column "
                        f"labels {columns[:5]}{' ...' if len(columns) > 5 else ''}. {layout}")
    values = np.empty((len(index), len(columns)), dtype=np.float64)
    for i, row in enumerate(rows[1:]):
        if len(row) != len(columns) + 1:
            raise UserError(f"{path}: row {i + 2} has {len(row) - 1} values for {len(columns)} columns. {layout}")
        for j, cell in enumerate(row[1:]):
            if not is_number(cell):
                raise UserError(f"{path}: non-numeric cell {cell!r} at row {i + 2}, column {j + 2}. {layout}")
            values[i, j] = float(cell)
    order = [index.index(c) for c in columns]
    adj = values[order]  # rows in the columns' order
    if node_ids is not None:
        missing = [n for n in map(str, node_ids) if n not in columns]
        if missing:
            raise UserError(f"{path} has no row and column for sensors {missing[:5]}"
                            f"{' ...' if len(missing) > 5 else ''} of the signal.")
        at = [columns.index(str(n)) for n in node_ids]
        adj = adj[np.ix_(at, at)]
    return adj.astype(np.float32)


#: edge-list weightings: 0/1 links, the third column as given, a Gaussian kernel of distances
EDGE_WEIGHTINGS = ("connectivity", "weighted", "gaussian")


def _edge_list_notes(name: str, kind: str, edges: int, how: str, loops: int, costs: np.ndarray, kept: Optional[int],
                     threshold: float) -> List[str]:
    """What `read_edge_list` decided, one line each, for the log."""
    notes = [f"{name}: {edges} edges naming {how}"]
    if loops and kind != "gaussian":
        notes.append(f"{name}: {loops} self-loop{'s' if loops > 1 else ''} (an edge from a node to itself) kept "
                     "on the diagonal; remove those rows if the graph should have none")
    if kind == "gaussian":
        notes.append(f"{name}: third column read as distances, Gaussian kernel; kept {kept} of {edges} links (kernel "
                     f"weight >= {threshold}); --graph-format edges-weighted uses the column as weights instead")
    elif kind == "weighted":
        notes.append(f"{name}: weights as given ({costs.min():g} to {costs.max():g}), read as link strengths "
                     "(larger = more closely linked); if the column holds distances, --graph-format edges-gaussian "
                     "turns them into weights")
    elif any(c != 1.0 for c in costs):
        notes.append(f"{name}: read as 0/1 links (BasicTS's PEMS convention); --graph-format edges-weighted "
                     "uses the third column as weights, edges-gaussian as distances")
    return notes


def read_edge_list(path: Path, num_nodes: int, kind: Literal["connectivity", "weighted", "gaussian"] = "connectivity",
                   node_ids: Optional[Sequence[str]] = None, use_ids: Optional[bool] = None, threshold: float = 0.1,
                   notes: Optional[List[str]] = None) -> np.ndarray:
    """An adjacency from an edge list: `from,to` or `from,to,weight` rows, with or without a header.

    Args:
        path: CSV file.
        num_nodes: Number of nodes N.
        kind: `connectivity` gives directed 0/1 edges as BasicTS's PEMS preparation does; `weighted`
            uses the third column as the weight, as given; `gaussian` reads it as a distance and gives
            `exp(-(d / std)^2)` (std over all edges), entries below `threshold` dropped, as DCRNN does.
        node_ids: Sensor ids in node order (a signal header), when known.
        use_ids: The file names sensor ids (True) or node indices (False); None: decided from the
            values, with an error when both readings fit and differ.
        threshold: Sparsity threshold of the Gaussian kernel.
        notes: Receives one line per decision taken (for the log).

    Returns:
        float32 `[N, N]`.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path} does not exist.")
    if kind not in EDGE_WEIGHTINGS:
        raise UserError(f"Unknown edge-list weighting {kind!r}; use one of {', '.join(EDGE_WEIGHTINGS)}.")
    rows = _edge_rows(path, kind)
    resolve, how = _node_resolver(path, rows, num_nodes, node_ids, use_ids)
    adj = np.zeros((num_nodes, num_nodes), dtype=np.float32)
    costs = np.array([c for _, _, c, _ in rows], dtype=np.float64)
    if kind == "gaussian":
        std = costs.std() or 1.0
        weights = np.exp(-((costs / std) ** 2))
        kept = weights >= threshold
        weights = np.where(kept, weights, 0.0)
    else:
        weights = costs if kind == "weighted" else np.ones(len(rows))
    loops, seen = 0, {}
    for (a, b, cost, line_no), w in zip(rows, weights):
        i, j = resolve(a, line_no), resolve(b, line_no)
        if (i, j) in seen and seen[i, j][2] != w:  # the weights used differ (0/1 links never do)
            first, earlier, _ = seen[i, j]
            raise UserError(f"{path}: the edge {a} -> {b} is on line {first} with {earlier:g} and on line {line_no} with "
                            f"{cost:g}; keep one of them.")
        seen.setdefault((i, j), (line_no, cost, w))
        adj[i, j] = w
        loops += i == j
    if kind == "gaussian":
        np.fill_diagonal(adj, 1.0)
    if notes is not None:
        notes += _edge_list_notes(path.name, kind, len(rows), how, loops, costs,
                                  int(kept.sum()) if kind == "gaussian" else None, threshold)
    return adj


def edge_names(path: Path) -> set:
    """The node names an edge list uses (its endpoints, as written)."""
    return {t for a, b, _, _ in _edge_rows(Path(path), "connectivity") for t in (a, b)}


def fits_indices(names, num_nodes: int) -> bool:
    """Every name reads as a node index 0..N-1."""
    return all(_as_index(t, num_nodes) is not None for t in names)


def _edge_rows(path: Path, kind: str) -> List[tuple]:
    """`(from, to, cost, line)` of every edge; a 2-column list has cost 1."""
    rows = []
    for line_no, row in enumerate(csv.reader(text_lines(path)), start=1):
        row = [c.strip() for c in row]
        if not row or not any(row):
            continue
        if line_no == 1 and _is_header(row):
            continue
        if len(row) not in (2, 3):
            raise UserError(f"{path}: line {line_no} must be from,to or from,to,weight; got {row}.")
        if len(row) == 2 and kind == "gaussian":
            raise UserError(f"{path}: line {line_no} has no distance column; edges-gaussian needs from,to,distance.")
        try:
            cost = float(row[2]) if len(row) == 3 else 1.0
        except ValueError:
            raise UserError(f"{path}: line {line_no} ({','.join(row)}) has a non-numeric weight.") from None
        if not np.isfinite(cost):
            raise UserError(f"{path}: line {line_no} ({','.join(row)}) has a weight that is not finite.")
        rows.append((row[0], row[1], cost, line_no))
    if not rows:
        raise UserError(f"{path} holds no edges.")
    return rows


#: first cells of an edge list's header row
_HEADER_WORDS = {"from", "to", "source", "target", "src", "dst", "start", "end", "node", "id", "i", "j"}


def _is_header(row: List[str]) -> bool:
    """A first row is a header when its weight cell is not a number or it names the columns."""
    return (len(row) >= 3 and not is_number(row[2])) or bool({c.lower() for c in row[:2]} & _HEADER_WORDS)


def _as_index(text: str, num_nodes: int) -> Optional[int]:
    try:
        value = float(text)
    except ValueError:
        return None
    return int(value) if value.is_integer() and 0 <= value < num_nodes else None


def _node_resolver(path: Path, rows: List[tuple], num_nodes: int, node_ids: Optional[Sequence[str]],
                   use_ids: Optional[bool]):
    """How edge endpoints map to node indices: (resolve(text, line) -> index, description)."""
    names = {t for a, b, _, _ in rows for t in (a, b)}
    index = {str(s).strip(): i for i, s in enumerate(node_ids)} if node_ids is not None else {}
    fits_index = fits_indices(names, num_nodes)
    fits_ids = bool(index) and names <= set(index)
    same = index and all(index.get(str(i)) == i for i in range(num_nodes))
    if use_ids is None:
        if fits_ids and fits_index and not same:
            raise UserError(f"{path}: its nodes could be node indices (0..{num_nodes - 1}) or sensor ids of the signal's "
                            "header, and the two readings differ. Say which: --graph-ids (sensor ids) or --no-graph-ids "
                            "(indices).")
        use_ids = fits_ids and not fits_index
    if use_ids and not index:
        raise UserError(f"{path}: --graph-ids needs the sensor ids of the signal: a CSV whose first row holds them "
                        "(--header), or an .h5 table.")

    def resolve(text: str, line_no: int) -> int:
        i = index.get(text) if use_ids else _as_index(text, num_nodes)
        if i is not None:
            return i
        if use_ids:
            raise UserError(f"{path}: line {line_no} names sensor {text}, which is not in the signal's header.")
        hint = (" It is not a sensor id of the signal's header either." if index else
                " If the file names sensor ids, give the signal as a CSV whose first row holds them (--header) "
                "and pass --graph-ids.")
        raise UserError(f"{path}: line {line_no} names node {text}, but the signal has only {num_nodes} nodes "
                        f"(0..{num_nodes - 1}).{hint}")

    return resolve, ("sensor ids of the signal's header" if use_ids else f"node indices 0..{num_nodes - 1}")


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


def grid_adjacency(height: int, width: int, neighbours: int = 4) -> np.ndarray:
    """0/1 adjacency `[H*W, H*W]` of a grid's cells, numbered row-major: each cell linked to its 4 (or 8, with the
    diagonals) neighbours, both ways."""
    if neighbours not in (4, 8):
        raise UserError(f"grid neighbours {neighbours}: choose 4 or 8.")
    steps = [(0, 1), (1, 0)] + ([(1, 1), (1, -1)] if neighbours == 8 else [])
    adj = np.zeros((height * width, height * width), dtype=np.float32)
    for r in range(height):
        for c in range(width):
            for dr, dc in steps:
                rr, cc = r + dr, c + dc
                if 0 <= rr < height and 0 <= cc < width:
                    adj[r * width + c, rr * width + cc] = adj[rr * width + cc, r * width + c] = 1.0
    return adj


def grid_coords(height: int, width: int) -> np.ndarray:
    """The centres of a grid's cells, row-major, as `coords.npy` holds coordinates (north first, then east): row 0 is the
    northernmost, so north is `-(row + 0.5)` and east `column + 0.5`, in cells.

    Shapes:
        -> `[H * W, 2]`
    """
    rows, cols = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    return np.column_stack([-(rows.ravel() + 0.5), cols.ravel() + 0.5]).astype(np.float64)


def read_coords(path: Path, node_ids: Optional[Sequence[str]] = None) -> np.ndarray:
    """Sensor coordinates from a CSV with `latitude`/`longitude` columns (degrees), or `x`/`y` columns (projected,
    e.g. UTM metres: x east, y north), and optionally `sensor_id`.

    Rows are matched to `node_ids` through the `sensor_id` column when both exist, else taken in
    file order. Returns float64 `[N, 2]`: (latitude, longitude), or (y, x) for projected coordinates: north first.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path} does not exist.")
    rows = list(csv.DictReader(text_lines(path)))
    if not rows:
        raise UserError(f"{path} is empty.")
    columns = {c.lower().strip(): c for c in rows[0]}
    lat = next((columns[c] for c in ("latitude", "lat") if c in columns), None)
    lon = next((columns[c] for c in ("longitude", "lon", "lng") if c in columns), None)
    degrees = lat is not None and lon is not None
    if not degrees:
        lat, lon = columns.get("y"), columns.get("x")
    if lat is None or lon is None:
        raise UserError(f"{path}: coordinates need latitude and longitude columns (degrees), or x and y columns "
                        f"(projected, e.g. metres); found {list(rows[0])}.")
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
        if degrees and not (abs(values[-1][0]) <= 90 and abs(values[-1][1]) <= 180):
            raise UserError(f"{path}: line {line} has latitude {r[lat]} and longitude {r[lon]}, outside -90..90 / "
                            "-180..180 degrees: these look like projected coordinates (e.g. metres). Name the columns "
                            "x and y (east, north) to use them as such, or convert them to degrees.")
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


#: --graph-format of an edge list -> its weighting
EDGE_FORMATS = {"edges": "connectivity", "edges-weighted": "weighted", "edges-gaussian": "gaussian"}


def graph_format(path: Path) -> str:
    """`pkl`, `dense` (a square matrix) or `edges` (rows of from,to[,weight]), from the file itself."""
    if path.suffix == ".pkl":
        return "pkl"
    lines = [line for line in readers.text_lines(path) if line.strip()]
    first = lines[0].lower() if lines else ""
    width = len(first.split(","))
    if ("from" in first and "to" in first) or (width in (2, 3) and len(lines) != width):
        return "edges"
    return "dense"


def read_graph_file(path: Path, num_nodes: Optional[int] = None) -> np.ndarray:
    """A graph for the generator: edge list (`num_nodes`, default its largest id + 1), dense CSV or pkl."""
    if path.suffix == ".pkl":
        return read_dcrnn_pkl(path)[0]
    if graph_format(path) == "edges":
        ids, _ = readers.read_csv_matrix(path, header=True)
        return read_edge_list(path, num_nodes or int(ids[:, :2].max()) + 1, use_ids=False)
    return read_dense_adj(path)
