"""`python -m stvfm_plugin.forecast` and `Forecaster`: the steps after the latest readings, with calibrated intervals."""
from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stvfm_plugin.conformal import _quantile, calibrate, coverage
from stvfm_plugin.data.commands import main as data_main
from stvfm_plugin.forecast import main as forecast_main
from stvfm_plugin.forecaster import Forecaster
from stvfm_plugin.run import main as run_main

import reliability
from conftest import CONFIGS

IDS = ["s0", "s1", "s2", "s3"]
START = dt.datetime(2024, 1, 1)
STEPS = 288 * 3


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A working directory with the prepared set `Speeds` (4 sensors named s0..s3, 3 days of 5-minute steps from
    2024-01-01) and an STID run on it in `run/`."""
    root = tmp_path_factory.mktemp("forecast")
    rng = np.random.default_rng(0)
    speeds = 60 + 5 * np.sin(np.arange(STEPS) * 2 * np.pi / 288)[:, None] + rng.normal(0, 1, size=(STEPS, 4))
    np.savetxt(root / "speeds.csv", speeds, delimiter=",", fmt="%.4f", header=",".join(IDS), comments="")
    assert data_main(["prepare", "--data", str(root / "speeds.csv"), "--name", "Speeds", "--step-minutes", "5",
                      "--start", START.isoformat(), "--out", str(root / "datasets")]) == 0
    return root


@pytest.fixture
def run(trained, monkeypatch) -> Path:
    monkeypatch.chdir(trained)
    if not (trained / "run" / "STID_best_val_MAE.pt").is_file():
        assert run_main(["-c", str(CONFIGS / "STID.py"), "--dataset", "Speeds", "--set", "num_epochs=2", "--threads", "1",
                         "--seed", "1", "--run-dir", "run", "--save-results"]) == 0
    return trained / "run"


def test_the_forecaster_on_the_test_windows_gives_the_saved_test_predictions(run):
    forecaster = Forecaster.load(run)
    data, stamps = (np.load(f"datasets/Speeds/test_{k}.npy") for k in ("data", "timestamps"))
    windows = range(len(data) - 23)
    inputs = np.stack([data[i:i + 12] for i in windows])
    predicted = np.concatenate([forecaster.predict(inputs[k:k + 64], np.stack([stamps[i:i + 12] for i in windows][k:k + 64]),
                                                   np.stack([stamps[i + 12:i + 24] for i in windows][k:k + 64]))
                                for k in range(0, len(inputs), 64)])  # the test's batches of 64
    saved = np.load(run / "test_results" / "prediction.npy")
    assert predicted.shape == saved.shape and np.array_equal(predicted, saved)


def test_forecast_writes_the_steps_after_the_last_reading_with_ids_and_bounds(run, capsys):
    assert forecast_main([str(run), "--out", "f.csv", "--plot", "f.png"]) == 0
    out = capsys.readouterr().out
    table = pd.read_csv("f.csv")
    last = START + (STEPS - 1) * dt.timedelta(minutes=5)
    assert list(table.columns) == ["time", "sensor", "step", "forecast", "lower", "upper"] and len(table) == 12 * 4
    assert table["time"][0] == str(last + dt.timedelta(minutes=5)) and table["time"].iloc[-1] == str(
        last + dt.timedelta(minutes=60))
    assert list(table["sensor"][:4]) == IDS and (table["lower"] < table["forecast"]).all()
    assert (table["forecast"] < table["upper"]).all() and Path("f.png").stat().st_size > 10_000
    assert f"12 steps after {last.isoformat(sep=' ')}, 4 sensors, 90% intervals" in out


def test_the_same_forecast_from_a_file_in_any_column_order(run, capsys):
    readings, end = Forecaster.load(run).latest()
    expected = Forecaster.load(run).forecast()
    order = [2, 0, 3, 1]
    times = [end - k * dt.timedelta(minutes=5) for k in range(11, -1, -1)]
    frame = pd.DataFrame(readings[:, order], columns=[IDS[i] for i in order])
    frame.insert(0, "time", [t.isoformat() for t in times])
    frame.to_csv("latest.csv", index=False)
    assert forecast_main([str(run), "--data", "latest.csv", "--out", "g.csv"]) == 0
    frame.drop(columns="time").to_csv("plain.csv", index=False)
    assert forecast_main([str(run), "--data", "plain.csv", "--end", end.isoformat(), "--out", "h.csv"]) == 0
    for name in ("g.csv", "h.csv"):
        table = pd.read_csv(name)
        assert np.allclose(table["forecast"], expected["forecast"], atol=1e-4)
        assert list(table["time"]) == [str(t) for t in expected["time"]]


def write_case_files(run: Path) -> None:
    """The files the reliability cases name, from the run's latest readings."""
    readings, _ = Forecaster.load(run).latest()
    header = ",".join(IDS)
    body = "\n".join(",".join(f"{v:.3f}" for v in row) for row in readings)
    Path("latest.csv").write_text(header + "\n" + body + "\n")
    Path("unknown.csv").write_text(header.replace("s3", "x9") + "\n" + body + "\n")
    Path("missing.csv").write_text(",".join(IDS[:3]) + "\n" + "\n".join(
        ",".join(f"{v:.3f}" for v in row[:3]) for row in readings) + "\n")
    Path("short.csv").write_text(header + "\n" + "\n".join(body.splitlines()[:5]) + "\n")
    lines = body.splitlines()
    lines[1] = "n/a," + lines[1].split(",", 1)[1]
    Path("text.csv").write_text(header + "\n" + "\n".join(lines) + "\n")
    readings, end = Forecaster.load(run).latest(rows=24)
    five = dt.timedelta(minutes=5)

    def timed(name: str, rows: np.ndarray, times) -> None:
        Path(name).write_text("time," + header + "\n" + "\n".join(
            t.isoformat() + "," + ",".join("" if np.isnan(v) else f"{v:.3f}" for v in row)
            for t, row in zip(times, rows)) + "\n")

    times = [end - k * five for k in range(len(readings) - 1, -1, -1)]
    timed("stamped.csv", readings, times)
    timed("newest.csv", readings[::-1], times[::-1])
    timed("ten.csv", readings, [end - 2 * k * five for k in range(len(readings) - 1, -1, -1)])
    timed("gap.csv", np.delete(readings, 20, axis=0), np.delete(np.array(times, dtype=object), 20))
    timed("twice.csv", np.concatenate([readings[:21], readings[20:]]), times[:21] + times[20:])
    timed("empty.csv", np.where(np.arange(len(readings))[:, None] >= 12, np.nan, readings), times)
    timed("far.csv", np.where((np.arange(len(readings)) == 22)[:, None], 1e12, readings), times)
    timed("negative.csv", np.where((np.arange(len(readings)) == 22)[:, None], -5.0, readings), times)
    Path("inf.csv").write_text(Path("stamped.csv").read_text().replace(f"{readings[23, 1]:.3f}", "inf", 1))
    timed("zoned.csv", readings, [t.replace(tzinfo=dt.timezone(dt.timedelta(hours=1))) for t in times])
    Path("norun").mkdir(exist_ok=True)
    shutil.copytree(run, "nockpt", dirs_exist_ok=True, ignore=shutil.ignore_patterns("*.pt"))


@pytest.mark.parametrize("case", reliability.FORECAST, ids=lambda c: " ".join(c.args))
def test_bad_input_gets_one_line_and_writes_nothing(run, capsys, case):
    write_case_files(run)
    for name in ("f.csv", "f.png"):  # left by another test in this working directory
        Path(name).unlink(missing_ok=True)
    args = list(case.args) if case.args[0] in ("norun", "nockpt") else [str(run), *case.args]
    outputs = [o for o in (["--out", "f.csv"], ["--plot", "f.png"]) if o[0] not in case.args]
    assert forecast_main(args + sum(outputs, [])) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == f"error: {case.message}" and "Traceback" not in err
    assert not Path("f.csv").exists() and not Path("f.png").exists() and not Path("x.txt").exists()


@pytest.mark.parametrize("name, options, note", [
    ("gap.csv", ["--fill-gaps"], "1 gap in the time stamps, 1 step in all (longest 1): filled as missing readings"),
    ("twice.csv", ["--repeats", "first"], "1 time stamp on more than one row (1 extra row): combined by their first"),
    ("zoned.csv", [], "time stamps with UTC offsets: kept as wall-clock times at UTC+01:00"),
    ("stamped.csv", ["--end", "2024-01-03T23:55"], None),
])
def test_time_problems_handled_by_an_option_give_the_forecast_of_the_clean_file(run, capsys, name, options, note):
    write_case_files(run)
    assert forecast_main([str(run), "--data", "stamped.csv", "--out", "clean.csv"]) == 0
    assert forecast_main([str(run), "--data", name, *options, "--out", "handled.csv"]) == 0
    err = capsys.readouterr().err
    assert (note in err) if note else "note:" not in err
    clean, handled = pd.read_csv("clean.csv"), pd.read_csv("handled.csv")
    assert list(handled["time"]) == list(clean["time"])
    if name == "gap.csv":  # one reading less in the window: another forecast, from the same times
        assert not np.allclose(handled["forecast"], clean["forecast"])
    else:
        assert np.allclose(handled["forecast"], clean["forecast"])


def test_a_numeric_header_that_is_not_exactly_the_run_s_ids_is_refused_by_id(tmp_path):
    from types import SimpleNamespace

    from stvfm_plugin.errors import UserError
    from stvfm_plugin.forecast import read_readings

    ids = ("773869", "767541", "767542")
    run = SimpleNamespace(sensor_ids=ids, dataset=SimpleNamespace(node_ids=ids, utc_offset=None, step_minutes=5,
                                                                  channel_names=None, grid_shape=None,
                                                                  digit_stamps="hours"),
                          step=dt.timedelta(minutes=5))
    body = "\n".join(f"{60 + k},{61 + k},{62 + k}" for k in range(12))
    (tmp_path / "typo.csv").write_text("767542,773869,767514\n" + body + "\n")
    with pytest.raises(UserError, match=r"1 sensor id\(s\) the run does not know \(767514\)"):
        read_readings(tmp_path / "typo.csv", run)
    (tmp_path / "other.csv").write_text("100001,100002,100003\n" + body + "\n")
    with pytest.raises(UserError, match="looks like sensor ids, but not the run's"):
        read_readings(tmp_path / "other.csv", run)
    (tmp_path / "reordered.csv").write_text("767542,773869,767541\n" + body + "\n")
    values, end = read_readings(tmp_path / "reordered.csv", run)
    assert end is None and values.shape == (12, 3) and list(values[0]) == [61, 62, 60]  # by id, not by position


def test_the_run_calibrates_on_validation_and_reports_test_coverage(run):
    metrics = json.loads((run / "test_metrics.json").read_text())
    calibration = json.loads((run / "calibration.json").read_text())
    assert set(metrics["coverage_0.9"]) == {"overall", "horizon_3", "horizon_6", "horizon_12"}
    assert 0.5 < metrics["coverage_0.9"]["overall"] <= 1 and metrics["width_0.9"]["horizon_12"] > 0
    per_sensor = np.asarray(calibration["levels"]["0.9"]["per_sensor"])
    assert per_sensor.shape == (12, 4) and (per_sensor > 0).all()


def test_conformal_quantile_and_coverage():
    errors = np.arange(1, 100, dtype=float)  # 99 errors: the ceil(100 * 0.9) = 90th smallest
    assert _quantile(errors, 0.9) == 90.0 and _quantile(errors[:5], 0.9) == float("inf")
    rng = np.random.default_rng(0)
    truth = rng.normal(size=(4000, 3, 2))
    mask = np.ones_like(truth, dtype=bool)
    calibration = calibrate(np.zeros_like(truth[:2000]), truth[:2000], mask[:2000], [0.8, 0.9])
    found = coverage(np.zeros_like(truth[2000:]), truth[2000:], mask[2000:], calibration, [1, 3])
    for level in ("0.8", "0.9"):  # exchangeable errors: the nominal coverage, within sampling noise
        assert found[level]["overall"]["coverage"] == pytest.approx(float(level), abs=0.02)
        assert found[level]["horizon_3"]["width"] == pytest.approx(2 * np.quantile(np.abs(truth[:2000, 2]), float(level)),
                                                                    rel=0.05)


def test_the_report_shows_each_models_interval_coverage_and_width():
    from stvfm_plugin.leaderboard.markdown import csv_rows, main_table
    from stvfm_plugin.leaderboard.rows import ModelRow, SeedRun

    def run(seed: int, cover: float) -> SeedRun:
        return SeedRun(seed, "finished", {"overall": {"MAE": 3.0, "RMSE": 5.0, "MAPE": 0.1},
                                          "coverage_0.9": {"overall": cover}, "width_0.9": {"overall": 12.3}})

    rows = [ModelRow("STID", [run(1, 0.87), run(2, 0.89)])]
    lines = main_table("Fix", rows, [1, 2])
    assert "| 90% interval coverage / width | Status |" in lines[6]
    assert "| 0.880 / 12.300 | finished x2 |" in lines[8]  # the means over seeds
    assert csv_rows(rows)[0]["coverage_0.9"] == 0.88
    older = [ModelRow("STID", [SeedRun(1, "finished", {"overall": {"MAE": 3.0, "RMSE": 5.0, "MAPE": 0.1}})])]
    assert "interval" not in main_table("Fix", older, [1])[6]  # reports of older runs stay as they were


def test_a_gpu_forecast_on_a_machine_without_one_is_one_line(run, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert forecast_main([str(run), "-g", "0", "--out", "gpu.csv"]) == 2
    err = capsys.readouterr().err
    assert "asks for GPUs, but this machine has no usable CUDA device" in err and "Traceback" not in err
    assert not Path("gpu.csv").exists()


# ---- intervals that respect the data ---------------------------------------------------------------------

def _drifting(seed: int, windows: int, spread: float):
    """Forecast errors proportional to each input window's spread (its readings' step-to-step change)."""
    rng = np.random.default_rng(seed)
    scale = spread * rng.uniform(0.5, 1.5, size=(windows, 3))  # [S, N]
    inputs = np.cumsum(rng.choice([-1.0, 1.0], size=(windows, 12, 3)), axis=1) * scale[:, None, :] + 100
    truth = rng.normal(size=(windows, 4, 3)) * scale[:, None, :] + 100
    return np.full_like(truth, 100.0), truth, np.ones_like(truth, bool), inputs, np.ones_like(inputs, bool)


def test_the_scaled_method_holds_its_coverage_when_the_test_period_is_busier_than_validation():
    validation, test = _drifting(0, 3000, spread=1.0), _drifting(1, 3000, spread=3.0)  # the test period: 3x busier
    found = {}
    for method in ("split", "scaled"):
        calibration = calibrate(*validation[:3], [0.9], method=method, inputs=validation[3], input_mask=validation[4])
        found[method] = coverage(*test[:3], calibration, [1], inputs=test[3], input_mask=test[4])["0.9"]["overall"]
    assert found["split"]["coverage"] < 0.6  # widths of the calm period
    assert found["scaled"]["coverage"] == pytest.approx(0.9, abs=0.02)


def test_the_recent_method_uses_only_windows_whose_readings_were_known():
    from stvfm_plugin.conformal import rolling_half_width

    history = _drifting(0, 200, 1.0)[:3]
    test = list(_drifting(1, 60, 1.0)[:3])
    before = rolling_half_width(*test, history, 0.9, size=150)
    test[1] = test[1].copy()
    test[1][40:] += 1000  # later readings: unknown when window 40 (and those up to 3 steps before it) is forecast
    after = rolling_half_width(*test, history, 0.9, size=150)
    assert np.array_equal(before[:44], after[:44]) and not np.array_equal(before[44:], after[44:])
    assert (after[44:] >= before[44:]).all() and (after[-1] > 100).all()  # 16 of the last 150 errors: beyond 10 %


def test_bounds_never_go_below_the_data_s_floor(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    counts = rng.poisson(np.tile(np.r_[np.zeros(12), np.linspace(1, 40, 12)], 12 * 5)[:, None], size=(1440, 3))
    np.savetxt("counts.csv", counts, delimiter=",", fmt="%d", header="a,b,c", comments="")
    assert data_main(["prepare", "--data", "counts.csv", "--name", "Counts", "--step-minutes", "60",
                      "--null-value", "none"]) == 0
    assert run_main(["-c", str(CONFIGS / "STID.py"), "--dataset", "Counts", "--set", "num_epochs=2", "--threads", "1",
                     "--run-dir", "run"]) == 0
    calibration = json.loads(Path("run/calibration.json").read_text())
    assert calibration["floor"] == 0.0 and calibration["method"] == "scaled"
    night = np.zeros((12, 3))  # quiet hours: the intervals reach down to the floor, never below
    table = Forecaster.load("run").forecast(night, end=None)
    assert (table["lower"] >= 0).all() and (table["forecast"] >= 0).all() and (table["lower"] == 0).any()
    assert data_main(["prepare", "--data", "counts.csv", "--name", "Signed", "--step-minutes", "60",
                      "--null-value", "none", "--floor", "none"]) == 0
    assert json.loads(Path("datasets/Signed/meta.json").read_text())["floor"] is None


def test_a_gap_in_the_window_of_a_run_without_a_missing_marker_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    counts = np.random.default_rng(0).poisson(20, size=(24 * 7 * 4, 3))
    np.savetxt("counts.csv", counts, delimiter=",", fmt="%d", header="a,b,c", comments="")
    assert data_main(["prepare", "--data", "counts.csv", "--name", "Counts", "--step-minutes", "60", "--null-value",
                      "none", "--start", "2024-01-01"]) == 0
    assert run_main(["-c", str(CONFIGS / "STID.py"), "--dataset", "Counts", "--set", "num_epochs=1", "--threads", "1",
                     "--run-dir", "run"]) == 0
    rows = "\n".join(",".join("" if (k == 20 and j == 1) else str(v) for j, v in enumerate(row))
                     for k, row in enumerate(counts[-24:]))
    Path("gap.csv").write_text("a,b,c\n" + rows + "\n")
    assert forecast_main(["run", "--data", "gap.csv", "--end", "2024-01-28T23:00", "--out", "f.csv"]) == 2
    assert ("1 reading(s) of the last 12 rows are missing (first: sensor b, row 21), but the run's data has no "
            "missing-value marker") in capsys.readouterr().err and not Path("f.csv").exists()


def test_a_real_time_for_a_run_whose_data_had_no_clock_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    speeds = 60 + np.random.default_rng(0).normal(size=(288 * 3, 2))
    np.savetxt("speeds.csv", speeds, delimiter=",", fmt="%.3f", header="a,b", comments="")
    assert data_main(["prepare", "--data", "speeds.csv", "--name", "NoClock", "--step-minutes", "5"]) == 0
    assert run_main(["-c", str(CONFIGS / "STID.py"), "--dataset", "NoClock", "--set", "num_epochs=1", "--threads", "1",
                     "--run-dir", "run"]) == 0
    np.savetxt("latest.csv", speeds[-12:], delimiter=",", fmt="%.3f", header="a,b", comments="")
    assert forecast_main(["run", "--data", "latest.csv", "--end", "2024-01-01T10:00"]) == 2
    assert "has no start time: its calendar features count steps from a Monday midnight" in capsys.readouterr().err
    assert forecast_main(["run", "--data", "latest.csv"]) == 0  # without a time: the run's own clock
