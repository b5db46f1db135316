"""Dataset tooling: layout, readers, graphs, presets, synthetic generator, info, and its clear errors."""
from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from stvfm_plugin.data.commands import main as data_main
from stvfm_plugin.data.layout import (DatasetSpec, load_graph, make_timestamps, read_meta, split_lengths,
                                      write_dataset)
from stvfm_plugin.data.synth import SynthOptions, generate
from stvfm_plugin.errors import UserError

import reliability
from conftest import SHARED, needs_shared


def run_data(argv, capsys) -> tuple[int, str, str]:
    code = data_main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def only_dataset_dirs(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


# ---- layout ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("steps,expected", [(17856, (10713, 3571, 3572)), (2016, (1209, 403, 404)),
                                            (2976, (1785, 595, 596))])
def test_split_lengths_match_basicts(steps, expected):
    assert split_lengths(steps, (0.6, 0.2, 0.2)) == expected


def test_timestamps_from_start_and_basicts_convention():
    import datetime as dt

    ts = make_timestamps(300, 5, dt.datetime(2012, 3, 1))  # 5-minute steps from a Thursday
    assert ts.dtype == np.float32 and ts.shape == (300, 2)
    assert ts[0, 0] == 0 and ts[1, 0] == pytest.approx(1 / 288) and ts[0, 1] == pytest.approx(3 / 7)
    assert ts[288, 0] == 0 and ts[288, 1] == pytest.approx(4 / 7)
    plain = make_timestamps(300, 5, None)
    assert plain[0, 1] == 0 and plain[288, 1] == pytest.approx(1 / 7)
    assert make_timestamps(2, 15, dt.datetime(2015, 1, 1, 6, 0))[0, 0] == pytest.approx(0.25)


@pytest.mark.parametrize("minutes,tod,dow", [(60 * 24 * 7, [0, 0, 0], [3, 3, 3]), (60 * 24, [0, 0, 0], [3, 4, 5]),
                                            (60, [0, 1 / 24, 2 / 24], [3, 3, 3]), (7, [0, 7 / 1440, 14 / 1440], [3, 3, 3])])
def test_timestamps_for_any_step_size(minutes, tod, dow):
    import datetime as dt

    ts = make_timestamps(3, minutes, dt.datetime(2012, 3, 1))  # weekly, daily, hourly, 7-minute steps
    assert ts[:, 0] == pytest.approx(tod) and ts[:, 1] == pytest.approx([d / 7 for d in dow])


def test_write_dataset_layout(tmp_path):
    data = np.random.default_rng(0).uniform(1, 10, size=(200, 5, 2))
    adj = np.eye(5)
    folder = write_dataset(tmp_path, DatasetSpec(name="X", step_minutes=15), data, adj, np.zeros((5, 2)))
    for split, n in zip(("train", "val", "test"), (120, 40, 40)):
        arr = np.load(folder / f"{split}_data.npy")
        assert arr.shape == (n, 5, 2) and arr.dtype == np.float32
        assert np.load(folder / f"{split}_timestamps.npy").shape == (n, 2)
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["regular_settings"] == {"train_val_test_ratio": [0.6, 0.2, 0.2], "norm_each_channel": False,
                                        "rescale": True, "metrics": ["MAE", "RMSE", "MAPE"], "null_val": 0.0}
    assert meta["frequency (minutes)"] == 15 and meta["shape"] == [200, 5, 2]
    with open(folder / "adj_mx.pkl", "rb") as f:
        assert pickle.load(f).dtype == np.float32
    assert load_graph(folder).shape == (5, 5)


def test_basicts_reads_the_layout(workdir):
    """BasicTS's own dataset class and settings reader accept what we write."""
    from basicts.data import BasicTSForecastingDataset
    from basicts.utils import get_regular_settings

    write_dataset("datasets", DatasetSpec(name="Y", step_minutes=5), np.random.rand(300, 4) + 1)
    ds = BasicTSForecastingDataset("Y", 12, 12, "train", use_timestamps=True)
    item = ds[0]
    assert item["inputs"].shape == (12, 4) and item["inputs_timestamps"].shape == (12, 2)
    assert get_regular_settings("Y")["null_val"] == 0.0


@pytest.mark.parametrize("data,adj,coords,message", [
    (np.ones(100), None, None, "must be [time, nodes] or [time, nodes, channels]"),
    (np.ones((100, 4)), np.eye(3), None, "the graph has 3 nodes but the signal has 4"),
    (np.ones((100, 4)), np.ones((4, 3)), None, "the adjacency must be square"),
    (np.where(np.eye(100, 4) > 0, np.nan, 1.0), None, None, "NaN/inf values (first at step 0, node 0)"),
    (np.ones((30, 4)), None, None, "too few steps (30) for windows of 24 steps"),
    (np.ones((100, 4)), None, np.ones((3, 2)), "coordinates must be [nodes, 2] = [4, 2]"),
])
def test_bad_input_clear_error_and_nothing_left_behind(tmp_path, data, adj, coords, message):
    from stvfm_plugin.errors import UserError

    with pytest.raises(UserError) as err:
        write_dataset(tmp_path / "root", DatasetSpec(name="Bad", step_minutes=5), data, adj, coords)
    assert message in str(err.value)
    assert only_dataset_dirs(tmp_path / "root") == []


def test_existing_dataset_needs_overwrite(tmp_path):
    from stvfm_plugin.errors import UserError

    spec = DatasetSpec(name="Z", step_minutes=5)
    write_dataset(tmp_path, spec, np.ones((200, 2)))
    with pytest.raises(UserError, match="already exists. Pass --overwrite"):
        write_dataset(tmp_path, spec, np.ones((200, 2)))
    write_dataset(tmp_path, spec, 2 * np.ones((200, 3)), overwrite=True)
    assert np.load(tmp_path / "Z" / "train_data.npy").shape == (120, 3)
    assert only_dataset_dirs(tmp_path) == ["Z"]


# ---- prepare from raw files ---------------------------------------------------------------------------

def test_prepare_csv_with_header_edge_list_and_coords(workdir, capsys):
    ids = ["101", "102", "103"]
    rows = "\n".join(",".join(f"{50 + i + j}" for j in range(3)) for i in range(120))
    Path("signal.csv").write_text(",".join(ids) + "\n" + rows + "\n")
    Path("edges.csv").write_text("from,to,cost\n0,1,100\n1,2,300\n")
    Path("loc.csv").write_text("sensor_id,latitude,longitude\n103,3,30\n101,1,10\n102,2,20\n")
    code, _, err = run_data(["prepare", "--data", "signal.csv", "--header", "--name", "Mine", "--step-minutes", "5",
                             "--graph", "edges.csv", "--coords", "loc.csv", "--start", "2020-01-06"], capsys)
    assert code == 0, err
    assert np.load("datasets/Mine/train_data.npy").shape == (72, 3)
    adj = load_graph("datasets/Mine")
    assert adj[0, 1] == 1 and adj[1, 0] == 0 and adj[1, 2] == 1  # directed 0/1 like BasicTS's PEMS
    assert np.load("datasets/Mine/coords.npy")[:, 0].tolist() == [1, 2, 3]  # matched by sensor id
    assert np.load("datasets/Mine/train_timestamps.npy")[0, 1] == 0  # 2020-01-06 is a Monday
    import hashlib

    assert read_meta("datasets/Mine")["source"]["files"] == [  # raw files by name and sha256, no machine path
        {"file": f, "sha256": hashlib.sha256(Path(f).read_bytes()).hexdigest()} for f in ("signal.csv", "edges.csv",
                                                                                          "loc.csv")]


def test_prepare_gaussian_edges_and_npz_channels(workdir, capsys):
    np.savez("sig.npz", data=np.random.rand(200, 4, 3) + 1)
    Path("edges.csv").write_text("from,to,cost\n0,1,1.0\n1,2,2.0\n2,3,30.0\n")
    code, _, err = run_data(["prepare", "--data", "sig.npz", "--channels", "0,2", "--name", "G", "--step-minutes", "5",
                             "--graph", "edges.csv", "--graph-format", "edges-gaussian"], capsys)
    assert code == 0, err
    signal = np.load("sig.npz")["data"]
    assert np.allclose(np.load("datasets/G/train_data.npy"), signal[:120][:, :, [0, 2]].reshape(120, 8))  # series n*2+c
    adj = load_graph("datasets/G")  # node n's channel c is series n * 2 + c
    assert adj[0, 0] == 1 and 0 < adj[2, 4] < adj[0, 2] < 1 and adj[4, 6] == 0  # far edge below threshold
    assert adj[0, 1] == 1 and adj[0, 3] == 0  # a node's two channels are linked, never across nodes and channels
    assert json.loads(Path("datasets/G/meta.json").read_text())["channels"]["names"] == ["0", "2"]


def test_prepare_h5_and_dcrnn_pkl(workdir, capsys):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("tables")
    index = pd.date_range("2012-03-01", periods=150, freq="5min")
    pd.DataFrame(np.random.rand(150, 3) + 1, index=index, columns=["7", "8", "9"]).to_hdf("la.h5", key="df")
    with open("adj.pkl", "wb") as f:
        pickle.dump([["7", "8", "9"], {"7": 0, "8": 1, "9": 2}, np.eye(3, dtype=np.float32)], f)
    code, _, err = run_data(["prepare", "--data", "la.h5", "--name", "LA", "--step-minutes", "5", "--graph", "adj.pkl"],
                            capsys)
    assert code == 0, err
    meta = json.loads(Path("datasets/LA/meta.json").read_text())
    assert meta["start_time"] == "2012-03-01T00:00:00" and meta["has_graph"]


def test_prepare_non_numeric_csv_cell(workdir, capsys):
    Path("s.csv").write_text("1,2\n3,x\n")
    code, _, err = run_data(["prepare", "--data", "s.csv", "--name", "S", "--step-minutes", "5"], capsys)
    assert code == 2 and "non-numeric cell 'x' at row 2, column 2" in err
    assert not Path("datasets/S").exists()


def test_prepare_nan_is_an_error_unless_asked(workdir, capsys):
    data = np.random.rand(200, 3) + 1
    data[5, 1] = np.nan
    np.save("n.npy", data)
    code, _, err = run_data(["prepare", "--data", "n.npy", "--name", "N", "--step-minutes", "5"], capsys)
    assert code == 2 and "NaN/inf values (first at step 5, node 1)" in err
    code, _, err = run_data(["prepare", "--data", "n.npy", "--name", "N", "--step-minutes", "5", "--nan-as-missing"],
                            capsys)
    assert code == 0 and np.load("datasets/N/train_data.npy")[5, 1] == 0


def test_prepare_needs_enough_steps(workdir, capsys):
    np.save("short.npy", np.ones((50, 2)))
    code, _, err = run_data(["prepare", "--data", "short.npy", "--name", "Sh", "--step-minutes", "5"], capsys)
    assert code == 2 and "too few steps (50) for windows of 24 steps (input + output) in every split" in err


def test_prepare_preset_errors(workdir, capsys):
    code, _, err = run_data(["prepare", "--preset", "PEMS09", "--src", "."], capsys)
    assert code == 2 and "Unknown preset 'PEMS09'. Presets: PEMS03, PEMS04, PEMS07, PEMS08" in err
    code, _, err = run_data(["prepare", "--preset", "PEMS08", "--src", "."], capsys)
    assert code == 2 and "no signal file in ." in err and "PEMS08.npz" in err


def test_prepare_pems08_preset_from_raw_files(workdir, capsys):
    """The PEMS08 raw layout (npz [L, N, 3] + distance CSV) gives BasicTS's shapes and splits."""
    np.savez("PEMS08.npz", data=np.random.rand(17856, 170, 3).astype(np.float32) + 1)
    rng = np.random.default_rng(0)
    Path("PEMS08.csv").write_text("from,to,cost\n" + "\n".join(
        f"{a},{b},{c:.1f}" for a, b, c in zip(rng.integers(0, 170, 300), rng.integers(0, 170, 300), rng.uniform(1, 900, 300))))
    code, _, err = run_data(["prepare", "--preset", "PEMS08", "--src", "."], capsys)
    assert code == 0, err
    shapes = [np.load(f"datasets/PEMS08/{s}_data.npy").shape for s in ("train", "val", "test")]
    assert shapes == [(10713, 170), (3571, 170), (3572, 170)]


def test_prepare_reads_a_numeric_id_header_that_the_weighted_edge_list_names(workdir, capsys):
    Path("s.csv").write_text("101,102,103\n" + "\n".join(f"{i},{i + 1},{i + 2}" for i in range(120)) + "\n")
    Path("e.csv").write_text("101,102,1.5\n103,101,0.5\n")
    code, _, err = run_data(["prepare", "--data", "s.csv", "--name", "W", "--step-minutes", "5", "--graph", "e.csv",
                             "--graph-format", "edges-weighted"], capsys)
    assert code == 0, err
    assert "s.csv: its first row holds the sensor ids the edge list names: read as a header" in err
    assert "e.csv: 2 edges naming sensor ids of the signal's header" in err and "weights as given (0.5 to 1.5)" in err
    adj = load_graph("datasets/W")
    assert adj[0, 1] == 1.5 and adj[2, 0] == 0.5 and np.count_nonzero(adj) == 2
    assert sum(np.load(f"datasets/W/{s}_data.npy").shape[0] for s in ("train", "val", "test")) == 120


@pytest.mark.parametrize("edges,flag,message", [
    ("0,1\n", ["--header"], "e.csv: its nodes could be node indices (0..2) or sensor ids of the signal's header, and "
                             "the two readings differ. Say which: --graph-ids (sensor ids) or --no-graph-ids (indices)."),
    ("2,9\n", ["--header", "--graph-ids"], "e.csv: line 1 names sensor 9, which is not in the signal's header."),
    ("0,7\n", ["--header", "--no-graph-ids"], "e.csv: line 1 names node 7, but the signal has only 3 nodes (0..2). "
                                               "It is not a sensor id of the signal's header either."),
])
def test_prepare_edge_list_ids_it_cannot_place_are_one_clear_error(workdir, capsys, edges, flag, message):
    Path("s.csv").write_text("2,0,1\n" + "\n".join(f"{i},{i + 1},{i + 2}" for i in range(120)) + "\n")
    Path("e.csv").write_text(edges)
    code, _, err = run_data(["prepare", "--data", "s.csv", "--name", "A", "--step-minutes", "5", "--graph", "e.csv",
                             *flag], capsys)
    assert code == 2 and err.strip().splitlines()[-1] == f"error: {message}" and "Traceback" not in err
    assert only_dataset_dirs(workdir / "datasets") == []


def test_prepare_warns_when_the_null_value_is_common_and_none_keeps_zeros_as_data(workdir, capsys):
    counts = np.random.default_rng(0).poisson(0.5, size=(200, 4))
    np.savetxt("c.csv", counts, delimiter=",", fmt="%d")
    code, _, err = run_data(["prepare", "--data", "c.csv", "--name", "Masked", "--step-minutes", "60"], capsys)
    share = 100 * (counts == 0).mean()
    assert code == 0 and f"WARNING: {share:.1f} % of the readings equal the null value 0, so they are treated as " \
        "missing: left out of the loss and the metrics. If they are real readings (e.g. zero counts), prepare again " \
        "with --null-value none (or --null-value X for another marker) --overwrite." in err
    code, _, err = run_data(["prepare", "--data", "c.csv", "--name", "Counts", "--step-minutes", "60",
                             "--null-value", "none"], capsys)
    assert code == 0 and "WARNING" not in err and "null value none (every reading is data)" in err
    assert read_meta("datasets/Counts")["regular_settings"]["null_val"] is None
    code, out, _ = run_data(["info", "Counts"], capsys)
    assert "missing     none: no null value, every reading is scored" in out


def test_edge_list_with_out_of_range_node(workdir, capsys):
    np.save("s.npy", np.ones((200, 3)))
    Path("e.csv").write_text("from,to,cost\n0,5,1\n")
    code, _, err = run_data(["prepare", "--data", "s.npy", "--name", "E", "--step-minutes", "5", "--graph", "e.csv"],
                            capsys)
    assert code == 2 and "names node 5, but the signal has only 3 nodes" in err


@needs_shared
def test_los_loop_preset(workdir, capsys):
    code, _, err = run_data(["prepare", "--preset", "LosLoop", "--src", str(SHARED / "data" / "los_loop")], capsys)
    assert code == 0, err
    code, out, _ = run_data(["info", "LosLoop"], capsys)
    assert "2016 x 207" in out and "train 1209 / val 403 / test 404" in out and "coordinates yes" in out


@needs_shared
def test_sz_taxi_preset(workdir, capsys):
    code, _, err = run_data(["prepare", "--preset", "SZTaxi", "--src", str(SHARED / "data" / "sz_taxi")], capsys)
    assert code == 0, err
    code, out, _ = run_data(["info", "SZTaxi"], capsys)
    assert "2976 x 156" in out and "15 min" in out and "24.7" in out  # share of zeros (missing)


def test_info_on_missing_dataset(workdir, capsys):
    code, _, err = run_data(["info", "Nothing"], capsys)
    assert code == 2 and "datasets/Nothing does not exist" in err


# ---- synthetic generator --------------------------------------------------------------------------------

def test_synth_is_deterministic_by_seed():
    a, adj_a, _ = generate(SynthOptions(num_nodes=10, num_steps=600, seed=3))
    b, adj_b, _ = generate(SynthOptions(num_nodes=10, num_steps=600, seed=3))
    c, _, _ = generate(SynthOptions(num_nodes=10, num_steps=600, seed=4))
    assert np.array_equal(a, b) and np.array_equal(adj_a, adj_b) and not np.array_equal(a, c)


def test_synth_has_cycles_missing_share_and_scale():
    options = SynthOptions(num_nodes=20, num_steps=288 * 14, seed=0, missing_share=0.05)
    flow, adj, coords = generate(options)
    assert flow.shape == (288 * 14, 20) and adj.shape == (20, 20) and coords.shape == (20, 2)
    assert np.allclose(adj, adj.T) and adj.sum() > 0
    assert 0.03 < np.mean(flow == 0) < 0.08
    filled = np.where(flow == 0, np.nan, flow)
    daily = np.nanmean(filled.reshape(14, 288, 20), axis=(0, 2))
    assert daily[8 * 12] > 1.5 * daily[3 * 12]  # 8:00 rush hour busier than 3:00
    days = np.nanmean(filled.reshape(14, 288, 20), axis=(1, 2))
    assert days[5] < 0.85 * days[2]  # weekend quieter
    node_means = np.nanmean(filled, axis=0)
    assert node_means.max() > 1.5 * node_means.min()  # per-node scale


def test_synth_congestion_propagates_along_edges():
    """Downstream neighbours of a congested node slow down a few steps later."""
    chain = np.zeros((6, 6), dtype=np.float32)
    for i in range(5):
        chain[i, i + 1] = 1
    options = SynthOptions(num_nodes=6, num_steps=288 * 7, seed=0, missing_share=0.0, noise=0.0,
                           congestion_rate=0.0)
    calm, _, _ = generate(options, chain)
    options.congestion_rate = 0.05
    jammed, _, _ = generate(options, chain)
    drop = 1 - jammed / calm  # congestion's share of lost flow
    n = len(drop)
    lagged = [np.corrcoef(drop[:n - k, 2], drop[k:, 3])[0, 1] for k in (0, options.propagation_delay)]
    assert drop.max() > 0.3 and lagged[1] > lagged[0]


def test_synth_like_pems08_on_a_given_graph(workdir, capsys):
    Path("g.csv").write_text("from,to,cost\n0,1,10\n1,2,10\n2,3,10\n")
    code, _, err = run_data(["synth", "--like", "PEMS08", "--graph", "g.csv", "--steps", "600", "--seed", "2"], capsys)
    assert code == 0, err
    assert np.load("datasets/PEMS08/train_data.npy").shape == (360, 4)
    code, _, err = run_data(["synth", "--like", "PEMS99"], capsys)
    assert code == 2 and "--like 'PEMS99' is not a known shape" in err


# ---- bad input: one line, exit 2, nothing written ---------------------------------------------------------

def _signal_files():
    rows = "\n".join(",".join(f"{50 + i + j}" for j in range(3)) for i in range(120))
    Path("signal.csv").write_text(rows + "\n")
    Path("edges.csv").write_text("from,to,cost\n0,1,100\n1,2,300\n")


@pytest.mark.parametrize("case", reliability.PREPARE, ids=lambda c: " ".join(c.args))
def test_prepare_bad_input_is_one_line_and_writes_nothing(workdir, capsys, case):
    _signal_files()
    for name, text in reliability.PREPARE_FILES.items():
        Path(name).write_text(text)
    Path("badcoords.csv").write_text("latitude,longitude\n1,10\nnorth,20\n3,30\n")
    Path("negative.csv").write_text("0,1,0\n1,0,-2\n0,1,0\n")
    before = sorted(p.name for p in workdir.iterdir())
    code, _, err = run_data(reliability.PREPARE_BASE.split()[3:] + list(case.args), capsys)
    assert code == 2 and err.strip() == f"error: {case.message}" and "Traceback" not in err
    assert case.disk.startswith("nothing") and sorted(p.name for p in workdir.iterdir()) == before  # nothing written
    assert not (workdir.parent / "x").exists()


@pytest.mark.parametrize("name", ["/tmp/abs", ""])
def test_prepare_refuses_an_absolute_or_empty_name(workdir, capsys, name):
    _signal_files()
    code, _, err = run_data(["prepare", "--data", "signal.csv", "--name", name, "--step-minutes", "5",
                             "--overwrite"], capsys)
    assert code == 2 and err.strip() == ("error: prepare without --preset needs --data FILE and --name NAME, and "
                                         "--step-minutes M unless the file has time stamps (or use a preset: PEMS03, "
                                         "PEMS04, PEMS07, PEMS08, METR-LA, PEMS-BAY, LosLoop, SZTaxi, TaxiNYC)."
                                         if not name else
                                         f"error: Dataset name {name!r} must be a plain folder name (letters, digits, "
                                         "- or _), not a path; use --out to choose where datasets are written.")
    assert sorted(p.name for p in workdir.iterdir()) == ["edges.csv", "signal.csv"]


def test_a_dataset_written_meanwhile_is_not_replaced_without_overwrite(tmp_path, monkeypatch):
    """Two preparations of one name: the second to finish fails at the final rename, the first one's data stays."""
    import stvfm_plugin.data.layout as layout

    spec = DatasetSpec(name="Race", step_minutes=5)
    first = np.random.rand(200, 3) + 1
    real_mkdtemp = layout.tempfile.mkdtemp

    def mkdtemp_then_other_writer(*args, **kwargs):  # the other preparation finishes while this one works
        folder = real_mkdtemp(*args, **kwargs)
        if ".tmp-" in kwargs.get("prefix", ""):
            monkeypatch.setattr(layout.tempfile, "mkdtemp", real_mkdtemp)
            write_dataset(tmp_path, spec, first)
        return folder

    monkeypatch.setattr(layout.tempfile, "mkdtemp", mkdtemp_then_other_writer)
    with pytest.raises(UserError, match="Race was written by another run while this one prepared it; nothing was "
                                        "replaced. Pass --overwrite to replace it."):
        write_dataset(tmp_path, spec, np.random.rand(200, 3) + 5)
    assert np.allclose(np.load(tmp_path / "Race" / "train_data.npy"), first[:120])
    assert only_dataset_dirs(tmp_path) == ["Race"]  # no temporary folder left


def test_temporary_folders_of_a_killed_preparation_are_removed(tmp_path):
    stale = tmp_path / ".Old.tmp-999999999-abc"  # no such process
    stale.mkdir(parents=True)
    (stale / "train_data.npy").write_bytes(b"x" * 100)
    live = tmp_path / f".Busy.tmp-{os.getpid()}-abc"  # a preparation still running
    live.mkdir()
    write_dataset(tmp_path, DatasetSpec(name="New", step_minutes=5), np.random.rand(200, 3) + 1)
    assert not stale.exists() and live.exists()
    assert only_dataset_dirs(tmp_path) == [live.name, "New"]


def test_info_into_a_closed_pipe_stops_quietly(workdir):
    import subprocess
    import sys

    synth = subprocess.run([sys.executable, "-m", "stvfm_plugin.data", "synth", "--nodes", "5", "--steps", "300"],
                           capture_output=True, text=True)
    assert synth.returncode == 0, synth.stderr
    proc = subprocess.run(f"{sys.executable} -m stvfm_plugin.data info Synthetic | head -1", shell=True,
                          capture_output=True, text=True)
    assert proc.stdout.startswith("dataset     Synthetic") and "Traceback" not in proc.stderr, proc.stderr


def test_edge_list_self_loops_and_weights_are_said(workdir, capsys):
    Path("s.csv").write_text("\n".join(f"{i},{i + 1},{i + 2}" for i in range(120)) + "\n")
    Path("e.csv").write_text("0,1,250.0\n1,1,80.0\n2,2,10.0\n")
    code, _, err = run_data(["prepare", "--data", "s.csv", "--name", "W", "--step-minutes", "5", "--graph", "e.csv",
                             "--graph-format", "edges-weighted"], capsys)
    assert code == 0, err
    assert ("e.csv: 2 self-loops (an edge from a node to itself) kept on the diagonal; remove those rows if the graph "
            "should have none") in err
    assert ("weights as given (10 to 250), read as link strengths (larger = more closely linked); if the column holds "
            "distances, --graph-format edges-gaussian turns them into weights") in err


@pytest.mark.parametrize("columns,rows,expected", [
    ("sensor_id,latitude,longitude", ["a,34.1,-118.2", "b,34.2,-118.3", "c,34.3,-118.1"], [[34.1, -118.2]]),
    ("sensor_id,x,y", ["a,553000,6151987", "b,553100,6152000", "c,553200,6151900"], [[6151987, 553000]]),
])
def test_coordinates_in_degrees_or_projected(workdir, capsys, columns, rows, expected):
    Path("s.csv").write_text("a,b,c\n" + "\n".join(f"{i},{i + 1},{i + 2}" for i in range(120)) + "\n")
    Path("loc.csv").write_text(columns + "\n" + "\n".join(rows) + "\n")
    code, _, err = run_data(["prepare", "--data", "s.csv", "--name", "C", "--step-minutes", "5", "--coords", "loc.csv"],
                            capsys)
    assert code == 0, err
    assert np.load("datasets/C/coords.npy")[:1].tolist() == expected  # north first


def test_a_labelled_dense_adjacency_as_pandas_writes_it_is_read_in_the_signal_order(workdir, capsys):
    Path("s.csv").write_text("a,b,c\n" + "\n".join(f"{i},{i + 1},{i + 2}" for i in range(120)) + "\n")
    Path("adj.csv").write_text(",c,a,b\nb,0.2,0.0,1.0\nc,1.0,0.5,0.0\na,0.0,1.0,0.3\n")  # rows in another order
    code, _, err = run_data(["prepare", "--data", "s.csv", "--name", "L", "--step-minutes", "5", "--graph", "adj.csv"],
                            capsys)
    assert code == 0, err
    adj = load_graph("datasets/L")  # [a, b, c] order: adj[from, to]
    assert np.allclose(adj, [[1.0, 0.3, 0.0], [0.0, 1.0, 0.2], [0.5, 0.0, 1.0]])


@pytest.mark.parametrize("case", reliability.SYNTH, ids=lambda c: " ".join(c.args))
def test_synth_bad_counts_are_one_line_and_write_nothing(workdir, capsys, case):
    code, _, err = run_data(reliability.SYNTH_BASE.split()[3:] + list(case.args), capsys)
    assert code == 2 and err.strip() == f"error: {case.message}" and "Traceback" not in err
    assert only_dataset_dirs(workdir / "datasets") == []
