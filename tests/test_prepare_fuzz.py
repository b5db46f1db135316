"""Fuzzing `prepare`: a few hundred seeded malformed signal, edge-list and coordinate files.

Every outcome must be either a written dataset that `data info` describes, or one clean error line (exit 2),
and no temporary folder may be left behind.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from stvfm_plugin.data.info import describe_dataset
from stvfm_plugin.data.commands import main as data_main

CASES = 300


BAD_CELLS = ["", "nan", "inf", "-inf", "abc", "1e400", "-3", "0", " 7 ", "\"2\"", "0x10"]


def _cell(rng: np.random.Generator) -> str:
    return BAD_CELLS[int(rng.integers(0, len(BAD_CELLS)))]


def _signal(rng: np.random.Generator, folder: Path, clean: bool) -> tuple[Path, list]:
    """A signal file (3 nodes when `clean`), well-formed or broken in one or more ways, and options that go with it."""
    steps, nodes = (300, 3) if clean else (int(rng.choice([0, 1, 5, 30, 130, 300])), int(rng.choice([0, 1, 3, 7])))
    values = rng.normal(50, 10, size=(steps, nodes))
    kind = rng.choice(["csv", "npy", "npz"] if clean else ["csv", "csv", "npy", "npz", "bytes", "empty"])
    options: list = []
    if kind == "csv":
        lines = [",".join(f"{v:.3f}" for v in row) for row in values]
        if rng.random() < 0.4:
            lines.insert(0, ",".join(rng.choice(["s1", "s2", "12", "x y", "", "s1"], size=nodes)))
        for _ in range(0 if clean else int(rng.integers(0, 3))):  # damage a few rows
            if lines:
                i = int(rng.integers(0, len(lines)))
                cells = lines[i].split(",")
                action = rng.integers(0, 3)
                if action == 0:
                    cells[int(rng.integers(0, len(cells)))] = _cell(rng)
                elif action == 1:
                    cells = cells[:-1]
                else:
                    cells.append("1.0")
                lines[i] = ",".join(cells)
        if rng.random() < 0.2:  # a blank line is harmless
            lines.insert(int(rng.integers(0, len(lines) + 1)), "")
        path = folder / "signal.csv"
        path.write_text("\n".join(lines) + ("\n" if rng.random() < 0.8 else ""), encoding="utf-8")
        if rng.random() < 0.3 and not clean:
            options.append(rng.choice(["--header", "--no-header"]))
    elif kind == "npy":
        shape = [(steps, nodes), (steps,), (steps, nodes, 2), (2, steps, nodes, 1)][0 if clean else int(rng.integers(0, 4))]
        array = rng.normal(0, 1, size=shape)
        if array.size and rng.random() < 0.3 and not clean:
            array.flat[int(rng.integers(0, array.size))] = rng.choice([np.nan, np.inf])
        path = folder / "signal.npy"
        with np.errstate(invalid="ignore"):  # NaN/inf cast to int64 is part of the fuzzing
            np.save(path, array.astype(rng.choice(["float32", "float64", "int64"])))
    elif kind == "npz":
        path = folder / "signal.npz"
        extra = {"y": values} if rng.random() < 0.3 and not clean else {}  # two arrays, none called data: needs --key
        np.savez(path, **{str(rng.choice(["data", "x"])): values, **extra})
        if rng.random() < 0.3 and not clean:
            options += ["--key", str(rng.choice(["data", "y", "zzz"]))]
    elif kind == "bytes":
        path = folder / str(rng.choice(["signal.csv", "signal.npy", "signal.npz", "signal.h5"]))
        path.write_bytes(rng.bytes(int(rng.integers(1, 400))))
    else:
        path = folder / "signal.csv"
        path.write_text("")
    return path, options


def _graph(rng: np.random.Generator, folder: Path, nodes: int, clean: bool) -> list:
    if clean:
        kind = rng.choice(["none", "edges"])
        if kind == "edges":
            (folder / "graph.csv").write_text("from,to,weight\n0,1,0.5\n1,2,2\n")
            return ["--graph", str(folder / "graph.csv"), "--graph-format", str(rng.choice(["edges", "edges-weighted"]))]
        return []
    kind = rng.choice(["none", "edges", "edges", "dense", "bytes"])
    if kind == "none":
        return []
    path = folder / "graph.csv"
    if kind == "edges":
        rows = ["from,to,weight"] if rng.random() < 0.5 else []
        for _ in range(int(rng.integers(0, 6))):
            a, b = (str(int(rng.integers(-1, nodes + 2))) for _ in range(2))
            weight = rng.choice(["1", "0.5", "-2", "abc", "", "nan", "3"])
            rows.append(",".join([a, b, weight][: int(rng.integers(1, 4))]))
        path.write_text("\n".join(rows) + "\n")
        options = ["--graph", str(path)]
        if rng.random() < 0.5:
            options += ["--graph-format", str(rng.choice(["edges", "edges-weighted", "edges-gaussian", "dense"]))]
        if rng.random() < 0.3:
            options.append(str(rng.choice(["--graph-ids", "--no-graph-ids"])))
        return options
    if kind == "dense":
        size = nodes + int(rng.integers(-1, 2))
        matrix = rng.choice([0.0, 1.0, -1.0, np.nan], p=[0.6, 0.3, 0.05, 0.05], size=(max(size, 0), max(size, 0)))
        path.write_text("\n".join(",".join(f"{v:g}" for v in row) for row in matrix) + "\n")
        return ["--graph", str(path)]
    path.write_bytes(rng.bytes(int(rng.integers(1, 200))))
    return ["--graph", str(path)]


def _coords(rng: np.random.Generator, folder: Path, nodes: int, clean: bool) -> list:
    if clean or rng.random() < 0.7:
        return []
    path = folder / "coords.csv"
    header = rng.choice(["latitude,longitude", "lat,lon", "x,y", "sensor_id,latitude,longitude"])
    rows = [header] + [",".join(str(rng.choice(["1.5", "2", "north", "nan", ""])) for _ in header.split(","))
                       for _ in range(nodes + int(rng.integers(-1, 2)))]
    path.write_text("\n".join(rows) + "\n")
    return ["--coords", str(path)]


def _options(rng: np.random.Generator, clean: bool) -> list:
    options = ["--step-minutes", str(rng.choice(["5", "60", "1440", "10080", "7"] + ([] if clean else ["0", "-5"])))]
    if clean:
        return options
    for flag, choices in (("--ratios", ["0.6,0.2,0.2", "0.7,0.1,0.2", "1,1,1", "0.5,0.5", "a,b,c"]),
                          ("--null-value", ["none", "0", "-1", "abc", "nan"]),
                          ("--start", ["2020-01-06", "2020-01-06T00:03", "yesterday"]),
                          ("--min-window", ["24", "2", "0"]),
                          ("--missing-marker", ["-1", "0"])):
        if rng.random() < 0.2:
            options += [flag, str(rng.choice(choices))]
    if rng.random() < 0.15:
        options.append("--nan-as-missing")
    return options


@pytest.mark.parametrize("chunk", range(3))
def test_prepare_survives_malformed_input(tmp_path, capsys, chunk):
    rng = np.random.default_rng(1000 + chunk)
    outcomes = {0: 0, 2: 0}
    for case in range(CASES // 3):
        folder = tmp_path / f"case{case}"
        folder.mkdir()
        clean = rng.random() < 0.3  # a well-formed case now and then: both outcomes are exercised
        signal, options = _signal(rng, folder, clean)
        argv = ["prepare", "--data", str(signal), "--name", "Fuzz", "--out", str(folder / "datasets"), *options,
                *_graph(rng, folder, 3, clean), *_coords(rng, folder, 3, clean), *_options(rng, clean)]
        code = data_main(argv)
        err = capsys.readouterr().err
        assert code in (0, 2), (argv, err)
        outcomes[code] += 1
        root = folder / "datasets"
        left = [p.name for p in root.iterdir()] if root.is_dir() else []
        assert code == 0 or not clean, (argv, err)
        if code == 0:
            assert left == ["Fuzz"], (argv, left)
            assert "dataset     Fuzz" in describe_dataset(root / "Fuzz"), argv
        else:
            lines = [line for line in err.strip().splitlines() if not line.startswith("[stvfm_plugin.data]")]
            assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, (argv, err)
            assert left == [], (argv, left)
    assert outcomes[0] > 0 and outcomes[2] > 0, outcomes  # the fuzzing reaches both outcomes
