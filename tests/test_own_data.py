"""Your own data in two commands: `prepare`, then `run` with a generic config.

Four user-shaped sets are prepared from raw CSV files exactly as the README says: counts full of real
zeros (no null value), weekly steps, a weighted edge list keyed by sensor ids, and a graph of one node.
STID and ST-VFM train on all four; every other model trains on one of them.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stvfm_plugin.baselines import BUILDERS
from stvfm_plugin.basicts_compat.null_value import basicts_null_val
from stvfm_plugin.data.commands import main as data_main
from stvfm_plugin.data.info import DatasetInfo
from stvfm_plugin.forecast import main as forecast_main, read_readings
from stvfm_plugin.forecaster import Forecaster
from stvfm_plugin.run import main as run_main

from conftest import CONFIGS, finite_metrics

TINY_STVFM = ["--set", "model_config.backbone=test_vit", "--set", "model_config.pretrained=False"]


def write_csv(path: Path, values: np.ndarray, header=None, fmt: str = "%.4f") -> Path:
    np.savetxt(path, values, delimiter=",", fmt=fmt, header=",".join(header) if header else "", comments="")
    return path


def make_raw_sets(raw: Path) -> dict:
    """The raw files of the four sets and their prepare arguments."""
    rng = np.random.default_rng(0)
    raw.mkdir(parents=True, exist_ok=True)
    sets = {}
    # 1. hourly passenger counts at 6 stops, 80 % real zeros (Poisson with a low rate), an unweighted edge list
    counts = rng.poisson(0.22, size=(24 * 28, 6)).astype(float)
    write_csv(raw / "counts.csv", counts, [f"stop{i}" for i in range(6)], fmt="%d")
    (raw / "counts_edges.csv").write_text("from,to\n0,1\n1,2\n2,3\n3,4\n4,5\n")
    sets["Counts"] = ["--data", str(raw / "counts.csv"), "--step-minutes", "60", "--graph", str(raw / "counts_edges.csv"),
                      "--null-value", "none"]
    # 2. weekly case counts in 5 regions over 160 weeks, unweighted edges without a header
    weekly = 50 + 10 * np.sin(np.arange(160) / 8)[:, None] + rng.normal(0, 2, size=(160, 5))
    write_csv(raw / "weekly.csv", weekly)
    (raw / "weekly_edges.csv").write_text("0,1\n1,2\n2,3\n3,4\n4,0\n")
    sets["Weekly"] = ["--data", str(raw / "weekly.csv"), "--step-minutes", "10080", "--graph", str(raw / "weekly_edges.csv"),
                      "--start", "2020-01-06"]
    # 3. 5-minute speeds at 8 sensors named by id; a weighted edge list keyed by those ids
    ids = [str(5290 + 7 * i) for i in range(8)]
    speeds = 60 + 5 * np.sin(np.arange(288 * 3) * 2 * np.pi / 288)[:, None] + rng.normal(0, 1, size=(288 * 3, 8))
    write_csv(raw / "speeds.csv", speeds, ids)
    (raw / "speeds_edges.csv").write_text("from,to,weight\n" + "".join(
        f"{ids[i]},{ids[(i + 1) % 8]},{0.25 + i / 10:.2f}\n" for i in range(8)))
    sets["Sensors"] = ["--data", str(raw / "speeds.csv"), "--step-minutes", "5", "--graph", str(raw / "speeds_edges.csv"),
                       "--graph-format", "edges-weighted"]
    # 4. one node, hourly, with a one-node graph
    single = 10 + np.cos(np.arange(24 * 20) * 2 * np.pi / 24)[:, None] + rng.normal(0, 0.1, size=(24 * 20, 1))
    write_csv(raw / "single.csv", single)
    write_csv(raw / "single_adj.csv", np.ones((1, 1)))
    sets["Single"] = ["--data", str(raw / "single.csv"), "--step-minutes", "60", "--graph", str(raw / "single_adj.csv")]
    return sets


@pytest.fixture(scope="module")
def own_data(tmp_path_factory) -> Path:
    """A working directory with the four sets prepared by `python -m stvfm_plugin.data prepare`."""
    root = tmp_path_factory.mktemp("own")
    for name, args in make_raw_sets(root / "raw").items():
        assert data_main(["prepare", "--name", name, "--out", str(root / "datasets"), *args]) == 0
    return root


def test_prepared_facts(own_data):
    infos = {n: DatasetInfo.load(own_data / "datasets" / n) for n in ("Counts", "Weekly", "Sensors", "Single")}
    counts, weekly, sensors, single = infos.values()
    assert counts.null_val is None and math.isnan(basicts_null_val(counts.null_val))  # BasicTS's "nothing masked"
    assert (counts.num_nodes, counts.steps_per_day, counts.time_of_day, counts.day_of_week) == (6, 24, True, True)
    assert (weekly.step_minutes, weekly.steps_per_day, weekly.time_of_day, weekly.day_of_week) == (10080, None, False,
                                                                                                    False)
    assert weekly.calendar_notes() == ["time of day off (steps of a day or more)",
                                       "day of week off (steps of more than a day)"]
    assert sensors.sensor_ids == tuple(str(5290 + 7 * i) for i in range(8))  # the header's ids, kept for forecasts
    assert counts.sensor_ids == tuple(f"stop{i}" for i in range(6)) and weekly.sensor_ids == tuple("01234")
    assert sensors.null_val == 0.0 and not sensors.day_of_week and "training split covers 1.8 days" in \
        sensors.calendar_notes()[0]
    adj = sensors.graph()
    assert adj[0, 1] == pytest.approx(0.25) and adj[7, 0] == pytest.approx(0.95) and np.count_nonzero(adj) == 8
    assert single.num_nodes == 1 and single.graph().shape == (1, 1)
    counts_adj = counts.graph()
    assert set(np.unique(counts_adj)) == {0.0, 1.0} and np.count_nonzero(counts_adj) == 5


def run_one(own_data: Path, model: str, dataset: str, extra=(), monkeypatch=None, tag: str = "") -> Path:
    """Train `model` on `dataset` for one epoch in its own checkpoint folder (`tag` tells apart two runs of one model
    on one dataset that share a module's data folder)."""
    monkeypatch.chdir(own_data)
    ckpt = f"checkpoints-{model}-{dataset}{tag}"
    assert run_main(["-c", str(CONFIGS / f"{model}.py"), "--dataset", dataset, "--set", "num_epochs=1",
                     "--threads", "1", "--ckpt-dir", ckpt, "--save-results", *extra]) == 0
    (metrics_file,) = list((own_data / ckpt).glob("**/test_metrics.json"))
    return metrics_file.parent


def forecasts_the_next_steps(run: Path, dataset: str) -> None:
    """The run forecasts the steps after its data's last reading for every sensor, inside calibrated bounds."""
    info = DatasetInfo.load(Path("datasets") / dataset)
    table = Forecaster.load(run).forecast()
    assert len(table) == 12 * info.num_nodes and list(table["sensor"][:info.num_nodes]) == list(info.sensor_ids)
    assert np.isfinite(table[["forecast", "lower", "upper"]].to_numpy()).all()
    assert (table["lower"] <= table["forecast"]).all() and (table["forecast"] <= table["upper"]).all()
    metrics = json.loads((run / "test_metrics.json").read_text())
    assert 0 <= metrics["coverage_0.9"]["overall"] <= 1 and metrics["width_0.9"]["overall"] > 0
    if dataset == "Sensors":  # numeric sensor ids in a header, columns shuffled: the same forecast
        readings, _ = Forecaster.load(run).latest()
        order = np.random.default_rng(1).permutation(info.num_nodes)
        write_csv(run / "latest.csv", readings[:, order], [info.sensor_ids[i] for i in order])
        shuffled, end = read_readings(run / "latest.csv", Forecaster.load(run))
        assert end is None and np.allclose(shuffled, readings, atol=1e-4)
        again = Forecaster.load(run).forecast(shuffled)
        assert np.allclose(again["forecast"], table["forecast"], atol=1e-3)


def scored_mae(run: Path) -> tuple[float, float]:
    """(test MAE from the metrics file, MAE over every target including zeros, from the saved results)."""
    metrics = json.loads((run / "test_metrics.json").read_text())
    assert finite_metrics(metrics)
    prediction, targets = (np.load(run / "test_results" / f"{k}.npy") for k in ("prediction", "targets"))
    return metrics["overall"]["MAE"], float(np.abs(prediction - targets).mean())


@pytest.mark.parametrize("dataset", ["Counts", "Weekly", "Sensors", "Single"])
@pytest.mark.parametrize("model", ["STID", "STVFM"])
def test_stid_and_stvfm_train_on_every_set(own_data, model, dataset, monkeypatch):
    run = run_one(own_data, model, dataset, TINY_STVFM if model == "STVFM" else (), monkeypatch)
    reported, every_target = scored_mae(run)
    note = json.loads((run / "run_info.json").read_text())["mape_note"]
    if dataset == "Counts":  # no null value: the zeros are scored like every other reading
        targets = np.load(run / "test_results" / "targets.npy")
        assert (targets == 0).mean() > 0.7
        assert reported == pytest.approx(every_target, rel=1e-4)
        assert note.startswith("not meaningful on this data: ") and "are zero or near it" in note  # MAPE divides by 0
    cfg = json.loads((run / "cfg.json").read_text())
    assert cfg["dataset_name"] == dataset and cfg["model_config"]["num_features"] == \
        DatasetInfo.load(own_data / "datasets" / dataset).num_nodes
    forecasts_the_next_steps(run, dataset)


@pytest.mark.parametrize("model", [m for m in BUILDERS if m not in ("STID", "STVFM")])
def test_every_other_model_trains_on_the_id_keyed_weighted_graph(own_data, model, monkeypatch, tiny_language_models):
    extra = []
    if model in ("GPT4TS", "STLLM"):
        extra = ["--set", f"model_config.backbone={tiny_language_models['gpt2' if model == 'GPT4TS' else 'bert']}"]
    run = run_one(own_data, model, "Sensors", extra, monkeypatch)
    scored_mae(run)
    info = json.loads((run / "run_info.json").read_text())
    assert info["epochs_run"] == 1 and info["trainable_params"] > 0
    assert info["inference_ms_per_batch"] > 0 and info["peak_memory_mb"]["mb"] > 0
    forecasts_the_next_steps(run, "Sensors")


@pytest.mark.parametrize("start", [None, "2024-01-01T00:00"])
def test_the_calendar_is_said_at_prepare_and_in_the_run_log(workdir, capsys, start):
    np.savetxt(workdir / "counts.csv", np.random.default_rng(0).poisson(5, (24 * 30, 4)), delimiter=",", fmt="%d")
    assert data_main(["prepare", "--data", "counts.csv", "--name", "Hourly", "--step-minutes", "60", "--null-value",
                      "none", *(["--start", start] if start else [])]) == 0
    note = ("calendar: no start time: step 0 is taken as 00:00 on a Monday for the time of day and day of week; "
            "prepare again with --start TIME (e.g. 2012-03-01T00:00) for the real clock")
    assert (note in capsys.readouterr().err) == (start is None)
    assert run_main(["-c", str(CONFIGS / "STID.py"), "--dataset", "Hourly", "--set", "num_epochs=1", "--threads", "1"]) == 0
    log = capsys.readouterr().err
    assert ("calendar features of Hourly: time of day (24 slots), day of week; the model's switches: "
            "if_time_in_day=True, if_day_in_week=True") in log
    assert (note in log) == (start is None)


# ---- a grid with two channels: every model forecasts every channel ---------------------------------------

@pytest.fixture(scope="module")
def grid_data(tmp_path_factory) -> Path:
    """`synth --grid 6x5`: trip starts and ends on a 6 x 5 grid, hourly, 6 weeks."""
    root = tmp_path_factory.mktemp("grid")
    assert data_main(["synth", "--grid", "6x5", "--name", "Grid", "--out", str(root / "datasets")]) == 0
    return root


def test_a_generated_grid_is_one_series_per_cell_and_channel(grid_data):
    info = DatasetInfo.load(grid_data / "datasets" / "Grid")
    assert info.num_nodes == 60 and info.grid_shape == (6, 10) and info.channel_names == ("start", "end")
    assert info.sensor_ids[:3] == ("r0c0@start", "r0c0@end", "r0c1@start") and info.null_val is None
    adj = info.graph()
    assert adj[0, 1] == 1 and adj[0, 2] == 1 and adj[0, 3] == 0 and adj[0, 10] == 1  # its end, its neighbour's start
    assert info.start == "2024-01-01T00:00:00" and info.step_minutes == 60


@pytest.mark.parametrize("model", list(BUILDERS))
def test_every_model_trains_and_forecasts_every_channel_of_a_grid(grid_data, model, monkeypatch, tiny_language_models,
                                                                  capsys):
    extra = TINY_STVFM if model == "STVFM" else []
    if model in ("GPT4TS", "STLLM"):
        extra = ["--set", f"model_config.backbone={tiny_language_models['gpt2' if model == 'GPT4TS' else 'bert']}"]
    run = run_one(grid_data, model, "Grid", extra, monkeypatch)
    metrics = json.loads((run / "test_metrics.json").read_text())
    assert set(metrics["channel_start"]) == {"MAE", "RMSE", "MAPE"} and metrics["channel_end"]["MAE"] > 0
    both = (metrics["channel_start"]["MAE"] + metrics["channel_end"]["MAE"]) / 2
    assert metrics["overall"]["MAE"] == pytest.approx(both, rel=0.02)  # the same number of readings each
    plot = ["--plot", str(run / "maps.png")] if model in ("STID", "STVFM") else []  # maps of the grid, per channel
    assert forecast_main([str(run), "--out", str(run / "f.csv"), *plot]) == 0
    assert not plot or (run / "maps.png").stat().st_size > 20_000
    table = pd.read_csv(run / "f.csv")
    assert list(table.columns[:4]) == ["time", "sensor", "channel", "step"] and len(table) == 12 * 60
    assert set(table["channel"]) == {"start", "end"} and table["sensor"].iloc[0] == "r0c0"
    assert (table["lower"] >= 0).all()  # counts: the floor
    if model == "STVFM":
        assert ("layout grid 6x5 cells x 2 channels (6x10 series, each cell's channels side by side)"
                in (capsys.readouterr().err + "".join(p.read_text() for p in run.glob("*.log"))))


@pytest.mark.parametrize("model", ["STVFM", "DeepAR"])
def test_the_models_that_read_their_targets_train_and_forecast_a_grid_under_the_grid_reports_protocol(
        grid_data, model, monkeypatch):
    """`--history week-residual` (TaxiNYC's protocol): a week in, each model's output added to last week's copy. The
    runner does it for every model alike (`test_run_cli`); these two also read the targets while training: DeepAR's
    teacher forcing and likelihood get the residuals, ST-VFM's flow loss the data's own flow (it is given the copy)."""
    extra = TINY_STVFM if model == "STVFM" else []
    run = run_one(grid_data, model, "Grid", [*extra, "--history", "week-residual"], monkeypatch, tag="-residual")
    assert json.loads((run / "cfg.json").read_text())["residual_lag"] == 168
    metrics = json.loads((run / "test_metrics.json").read_text())
    assert np.isfinite(metrics["overall"]["MAE"]) and set(metrics) >= {"channel_start", "channel_end"}
    table = Forecaster.load(run).forecast()
    assert len(table) == 12 * 60 and np.isfinite(table[["forecast", "lower", "upper"]].to_numpy()).all()


def test_a_naive_reference_is_scored_per_channel_as_the_models_are(grid_data, monkeypatch):
    from stvfm_plugin.references import main as reference_main

    monkeypatch.chdir(grid_data)
    assert reference_main(["--dataset", "Grid", "--method", "SeasonalDay", "--run-dir", "ref"]) == 0
    metrics = json.loads((grid_data / "ref" / "test_metrics.json").read_text())
    assert set(metrics["channel_start"]) == {"MAE", "RMSE", "MAPE"} and metrics["channel_end"]["MAE"] > 0
    both = (metrics["channel_start"]["MAE"] + metrics["channel_end"]["MAE"]) / 2
    assert metrics["overall"]["MAE"] == pytest.approx(both, rel=1e-9)  # as many readings in each channel


def test_a_grid_forecast_reads_newer_frames_from_a_grid_file(grid_data, monkeypatch):
    import h5py

    monkeypatch.chdir(grid_data)
    run = run_one(grid_data, "STID", "Grid", ["--set", "num_epochs=1"], monkeypatch, tag="-newer-frames")
    frames = np.random.default_rng(0).poisson(10, size=(24, 2, 6, 5)).astype(float)  # [T, C, H, W], one day
    with h5py.File("latest.h5", "w") as f:
        f["data"] = frames
        f["date"] = np.array([f"202401{d:02d}{h:02d}".encode() for d in (8,) for h in range(24)])
    assert forecast_main([str(run), "--data", "latest.h5", "--out", "g.csv"]) == 0
    table = pd.read_csv("g.csv")
    assert table["time"].iloc[0] == "2024-01-09 00:00:00" and len(table) == 12 * 60
    import datetime as dt

    direct = Forecaster.load(run).forecast(np.moveaxis(frames, 1, -1).reshape(24, 60), end=dt.datetime(2024, 1, 8, 23))
    assert np.allclose(table["forecast"], direct["forecast"], atol=1e-3)  # cell r0c0's start, its end, r0c1's start...
