"""The time axis: stamps read wherever the input has them, checked in one place (`stvfm_plugin.data.time_axis`)."""
from __future__ import annotations

import datetime as dt
import json
import pickle
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from stvfm_plugin.data.commands import main as data_main
from stvfm_plugin.data.info import DatasetInfo
from stvfm_plugin.data.time_axis import parse_stamps, read_stamps, regular_axis
from stvfm_plugin.errors import UserError

import reliability

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "taxi_nyc"
T0 = dt.datetime(2024, 1, 1)


def stamps(minutes) -> list:
    return [T0 + dt.timedelta(minutes=int(m)) for m in minutes]


# ---- the checks, one function --------------------------------------------------------------------------------

@pytest.mark.parametrize("minutes, step, match", [
    ([0, 5, 10, 20, 25], 5, r"1 gap in the time stamps, 1 missing step of 5 minutes in all \(first after 2024-01-01 "
                            r"00:10:00, next stamp 2024-01-01 00:20:00\)"),
    ([0, 5, 5, 10], 5, r"1 time stamp on more than one row \(first 2024-01-01 00:05:00, rows 2, 3\)"),
    ([0, 10, 5, 15], 5, r"out of order \(row 3, 2024-01-01 00:05:00, comes after 2024-01-01 00:10:00\)"),
    ([15, 10, 5, 0], 5, r"newest first"),
    ([0, 15, 30, 45], 5, r"15 minutes apart \(most rows\), but --step-minutes is 5; give --step-minutes 15"),
    ([0, 5, 10, 17, 20, 25], 5, r"2024-01-01 00:17:00 is 7 minutes after 2024-01-01 00:10:00, off the grid of 5-minute "
                                r"steps"),
])
def test_an_irregular_axis_is_refused_by_default(minutes, step, match):
    with pytest.raises(UserError, match=match):
        regular_axis(stamps(minutes), np.ones((len(minutes), 2)), "f.csv", step_minutes=step, null_val=0.0)


@pytest.mark.parametrize("length", [10, 50])
def test_gaps_filled_with_the_null_value_and_counted(length):
    minutes = [m for m in range(0, 5 * length, 5) if m not in (10, 15, 40)]
    data = np.arange(len(minutes), dtype=float)[:, None] + 1
    out, first, report = regular_axis(stamps(minutes), data, "f", step_minutes=None, null_val=-1.0, fill_gaps=True)
    assert first == T0 and report.step_minutes == 5 and out.shape == (length, 1)
    assert (out[[2, 3, 8], 0] == -1).all() and (out[:, 0] == -1).sum() == 3
    assert (report.gaps, report.filled_steps, report.longest_gap) == (2, 3, 2)
    assert list(out[np.flatnonzero(out[:, 0] != -1), 0]) == list(data[:, 0])  # the readings, each at its own step


@pytest.mark.parametrize("rule, expected", [("first", [1, 5]), ("last", [3, 2]), ("mean", [2, 3.5]), ("sum", [4, 7]),
                                            ("max", [3, 5])])
def test_repeats_combined_by_the_stated_rule_leaving_missing_readings_out(rule, expected):
    data = np.array([[0.0, 0.0], [1, 5], [3, 2], [9, 9]])  # the stamp 00:05 on rows 2 and 3
    data_with_null = np.vstack([data[:2], [[-1, 2]], data[3:]])  # a missing reading is left out of the rule
    out, _, report = regular_axis(stamps([0, 5, 5, 10]), data, "f", 5, null_val=-1.0, repeats=rule)
    assert out.shape == (3, 2) and list(out[1]) == expected and list(out[2]) == [9, 9]
    assert (report.repeated_stamps, report.repeated_rows, report.repeat_rule) == (1, 1, rule)
    kept, _, _ = regular_axis(stamps([0, 5, 5, 10]), data_with_null, "f", 5, null_val=-1.0, repeats=rule)
    assert kept[1, 0] == (1 if rule != "last" else -1)  # only 'last' takes the missing reading as it stands


def test_sorting_is_an_explicit_option_and_sorts_the_readings_with_their_stamps():
    out, first, report = regular_axis(stamps([10, 0, 5]), np.array([[3.0], [1], [2]]), "f", 5, sort=True)
    assert first == T0 and list(out[:, 0]) == [1, 2, 3] and report.sorted_rows == 3


def test_time_zones_follow_one_rule():
    found, offset = parse_stamps(["2024-03-30T23:00+01:00", "2024-03-31T00:00+01:00", "2024-03-31T02:00+02:00"], "f")
    assert offset == "+01:00" and found == [dt.datetime(2024, 3, 30, 23), dt.datetime(2024, 3, 31),
                                            dt.datetime(2024, 3, 31, 1)]  # one hour apart each, on one clock
    with pytest.raises(UserError, match=r"stamp 2 \(2024-01-01 01:00:00\) has no UTC offset and stamp 1"):
        parse_stamps(["2024-01-01T00:00Z", "2024-01-01T01:00"], "f")
    with pytest.raises(UserError, match="outside the years 1000-9000"):
        parse_stamps(["9999-12-31"], "--end")
    assert parse_stamps([b"2014010123"], "f", digits=True, rule="hours")[0] == [dt.datetime(2014, 1, 1, 23)]
    assert parse_stamps([b"2014010100", b"2014010123"], "f", digits=True)[0][1] == dt.datetime(2014, 1, 1, 23)
    with pytest.raises(UserError, match="f: its stamps end in 23 to 23, never 00 nor above 23"):
        parse_stamps([b"2014010123"], "f", digits=True)  # one stamp cannot tell an hour from a slot


# ---- prepare: stamps wherever the input has them ----------------------------------------------------------

@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def meta(name: str) -> dict:
    return json.loads(Path("datasets", name, "meta.json").read_text())


def frame(minutes, columns=("a", "b", "c")) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    index = pd.DatetimeIndex(stamps(minutes), name="time")
    return pd.DataFrame(50 + rng.normal(size=(len(index), len(columns))), index=index, columns=list(columns))


def test_a_pandas_csv_with_its_time_index_prepares_with_the_step_and_start_of_its_stamps(workdir, capsys):
    frame(range(0, 15 * 200, 15)).to_csv("readings.csv")
    assert data_main(["prepare", "--data", "readings.csv", "--name", "P"]) == 0
    found = meta("P")
    assert found["frequency (minutes)"] == 15 and found["start_time"] == "2024-01-01T00:00:00"
    assert found["shape"] == [200, 3] and found["node_ids"] == ["a", "b", "c"] and found["time_axis"]["filled_steps"] == 0
    assert "WARNING" not in capsys.readouterr().err


def test_a_gap_filled_on_request_is_masked_and_recorded(workdir, capsys):
    frame([m for m in range(0, 5 * 200, 5) if not 500 <= m < 560]).to_csv("readings.csv")
    assert data_main(["prepare", "--data", "readings.csv", "--name", "P"]) == 2
    assert "1 gap in the time stamps, 12 missing steps" in capsys.readouterr().err
    assert data_main(["prepare", "--data", "readings.csv", "--name", "P", "--fill-gaps", "--null-value", "-1"]) == 0
    assert "1 gap in the time stamps, 12 steps in all (longest 12): filled as missing readings" in capsys.readouterr().err
    found = meta("P")
    assert found["time_axis"]["filled_steps"] == 12 and found["shape"] == [200, 3]
    train = np.load("datasets/P/train_data.npy")
    assert (train[100:112] == -1).all() and (train[:100] != -1).all()


def test_stamps_in_another_format_are_named_as_stamps_not_as_readings(workdir, capsys):
    Path("us.csv").write_text("time,a\n" + "".join(f"01/{d:02d}/2024 00:00,{d}\n" for d in range(1, 30)))
    assert data_main(["prepare", "--data", "us.csv", "--name", "U", "--step-minutes", "1440"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: us.csv: its first column holds '01/01/2024 00:00' (row 2), which looks like a time stamp but is not an "
        "ISO date/time; write the stamps as 2024-01-31 08:00 (year-month-day hour:minute).")


def test_an_hdf5_table_s_whole_index_is_checked(workdir, capsys):
    frame([m for m in range(0, 5 * 200, 5) if m != 50]).to_hdf("table.h5", key="df")
    assert data_main(["prepare", "--data", "table.h5", "--name", "H"]) == 2
    assert "table.h5: 1 gap in the time stamps" in capsys.readouterr().err


def test_a_time_zone_start_is_kept_as_wall_clock_with_its_offset(workdir):
    np.savetxt("plain.csv", 50 + np.arange(600).reshape(200, 3) % 7, delimiter=",")
    assert data_main(["prepare", "--data", "plain.csv", "--name", "Z", "--step-minutes", "5",
                      "--start", "2024-01-01T00:00+01:00"]) == 0
    assert meta("Z")["start_time"] == "2024-01-01T00:00:00" and meta("Z")["utc_offset"] == "+01:00"


def grid_file(path: Path, hours, layout: str = "TCHW") -> np.ndarray:
    """An ST-ResNet-style grid file: `data` [rows, 2, 6, 5] of counts (or [rows, 6, 5, 2]) and `date` YYYYMMDDHH."""
    rng = np.random.default_rng(1)
    data = rng.poisson(5, size=(len(hours), 2, 6, 5)).astype(float)
    with h5py.File(path, "w") as f:
        f["data"] = data if layout == "TCHW" else np.moveaxis(data, 1, -1)
        f["date"] = np.array([(T0 + dt.timedelta(hours=h)).strftime("%Y%m%d%H").encode() for h in hours])
    return data


def slot_file(path: Path, days: int, per_day: int, slots=None) -> np.ndarray:
    """An ST-ResNet TaxiBJ / BikeNYC-style file: `date` YYYYMMDD and the slot of the day, 01 to `per_day`."""
    slots = list(range(1, per_day + 1)) if slots is None else list(slots)
    data = np.random.default_rng(4).poisson(5, size=(days * len(slots), 2, 6, 5)).astype(float)
    with h5py.File(path, "w") as f:
        f["data"] = data
        f["date"] = np.array([f"{(T0 + dt.timedelta(days=d)):%Y%m%d}{slot:02d}".encode()
                              for d in range(days) for slot in slots])
    return data


@pytest.mark.parametrize("per_day, step", [(48, 30), (24, 60)], ids=["TaxiBJ", "BikeNYC"])
def test_st_resnet_slot_stamps_read_as_slots_of_the_day(workdir, capsys, per_day, step):
    """ST-ResNet's `date` arrays count the slots of a day from 01 (slot 01 at midnight; TaxiBJ's 48th is 23:30): read
    as hours, `2013070124` would be refused and `...01` an hour late."""
    data = slot_file(Path("bj.h5"), 6, per_day)
    assert data_main(["prepare", "--data", "bj.h5", "--name", "BJ", "--null-value", "none"]) == 0
    assert (f"bj.h5: stamps read as ST-ResNet's slots of the day, YYYYMMDD and 01 to {per_day} (slot 01 at midnight, "
            f"{step} minutes each); --digit-stamps hours reads them as hours") in capsys.readouterr().err
    found = meta("BJ")
    assert found["start_time"] == "2024-01-01T00:00:00" and found["frequency (minutes)"] == step
    assert found["time_axis"]["digit_stamps"] == "slots" and found["time_axis"]["filled_steps"] == 0
    assert found["shape"] == [6 * per_day, 60] and DatasetInfo.load("BJ").digit_stamps == "slots"
    assert np.array_equal(np.concatenate([np.load(f"datasets/BJ/{s}_data.npy") for s in ("train", "val", "test")]),
                          np.moveaxis(data, 1, -1).reshape(len(data), 60).astype(np.float32))
    last = read_stamps([f"20240101{per_day}".encode()], "f", True, step, "slots")  # what `forecast --data` reads
    assert last == [dt.datetime(2024, 1, 1, 23, 60 - step)]


def test_files_of_one_source_are_one_signal_their_stamps_one_axis(workdir, capsys):
    """TaxiBJ comes as a file a year (months apart), STDN as a training and a test volume (no stamps): `--data` takes
    them in order."""
    first, second = slot_file(Path("BJ13.h5"), 4, 48), slot_file(Path("BJ14.h5"), 4, 48)
    with h5py.File("BJ14.h5", "a") as f:  # the second file starts a week after the first ends
        f["date"][...] = np.array([f"{(T0 + dt.timedelta(days=11 + d)):%Y%m%d}{slot:02d}".encode()
                                   for d in range(4) for slot in range(1, 49)])
    assert data_main(["prepare", "--data", "BJ13.h5", "BJ14.h5", "--name", "BJ", "--null-value", "-1"]) == 2
    assert "BJ13.h5, BJ14.h5: 1 gap in the time stamps, 336 missing steps of 30 minutes" in capsys.readouterr().err
    assert data_main(["prepare", "--data", "BJ13.h5", "BJ14.h5", "--name", "BJ", "--null-value", "-1",
                      "--fill-gaps"]) == 0
    found = meta("BJ")
    assert found["shape"] == [(4 + 7 + 4) * 48, 60] and found["time_axis"]["filled_steps"] == 7 * 48
    assert [f["file"] for f in found["source"]["files"]] == ["BJ13.h5", "BJ14.h5"]
    signal = np.concatenate([np.load(f"datasets/BJ/{s}_data.npy") for s in ("train", "val", "test")])
    assert np.array_equal(signal[-4 * 48:], np.moveaxis(second, 1, -1).reshape(4 * 48, 60).astype(np.float32))
    assert np.array_equal(signal[:4 * 48], np.moveaxis(first, 1, -1).reshape(4 * 48, 60).astype(np.float32))
    volumes = np.random.default_rng(5).poisson(3, size=(200, 10, 20, 2)).astype(float)  # STDN: [T, H, W, 2]
    np.savez("volume_train.npz", volume=volumes[:150])
    np.savez("volume_test.npz", volume=volumes[150:])
    assert data_main(["prepare", "--data", "volume_train.npz", "volume_test.npz", "--name", "STDN", "--step-minutes",
                      "30", "--null-value", "none", "--channels", "0"]) == 0
    assert meta("STDN")["grid_shape"] == [10, 20] and np.array_equal(
        np.concatenate([np.load(f"datasets/STDN/{s}_data.npy") for s in ("train", "val", "test")]),
        volumes[..., 0].reshape(200, 200).astype(np.float32))
    np.savez("other.npz", volume=volumes[:50, :5])
    assert data_main(["prepare", "--data", "volume_train.npz", "other.npz", "--name", "X", "--step-minutes", "30"]) == 2
    assert capsys.readouterr().err.strip().endswith(
        "error: volume_train.npz, other.npz: other.npz holds 100 cells of a 5 x 20 grid, 2 channels, volume_train.npz "
        "200 cells of a 10 x 20 grid, 2 channels: give files of the same sensors and channels.")
    frame(range(0, 60 * 60, 60)).to_csv("jan.csv")
    frame(range(60 * 60, 60 * 120, 60), columns=("a", "c", "b")).to_csv("feb.csv")
    assert data_main(["prepare", "--data", "jan.csv", "feb.csv", "--name", "Y"]) == 2
    assert capsys.readouterr().err.strip().endswith(
        "error: jan.csv, feb.csv: feb.csv names its sensors otherwise than jan.csv: give files of the same sensors, in "
        "the same order.")


def test_ten_digit_stamps_that_could_be_hours_or_slots_are_refused_until_stated(workdir, capsys):
    slot_file(Path("open.h5"), 6, 24, slots=range(6, 23))  # 06 to 22 every day: hours or slots alike
    assert data_main(["prepare", "--data", "open.h5", "--name", "O"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: open.h5: its stamps end in 06 to 22, never 00 nor above 23: hours of the day (YYYYMMDDHH) that never "
        "reach midnight, or ST-ResNet's slots of the day (YYYYMMDD and 01 to T, slot 01 at midnight) that never reach "
        "the last one. Say which with --digit-stamps hours or --digit-stamps slots.")
    for rule, first in (("hours", "2024-01-01T06:00:00"), ("slots", "2024-01-01T05:00:00")):
        assert data_main(["prepare", "--data", "open.h5", "--name", rule, "--digit-stamps", rule, "--step-minutes",
                          "60", "--fill-gaps", "--null-value", "-1"]) == 0
        assert meta(rule)["start_time"] == first and DatasetInfo.load(rule).digit_stamps == rule
    frame(range(0, 60 * 50, 60)).to_csv("hourly.csv")
    assert data_main(["prepare", "--data", "hourly.csv", "--name", "C", "--digit-stamps", "slots"]) == 2
    assert "--digit-stamps slots: the stamps of hourly.csv are not ten digits" in capsys.readouterr().err


def test_a_grid_file_with_repeats_and_gaps_is_refused_then_prepared_with_the_explicit_options(workdir, capsys):
    hours = list(range(0, 100)) + list(range(90, 100)) + list(range(130, 300))  # 10 hours twice, 30 missing
    data = grid_file(Path("grid.h5"), hours)
    assert data_main(["prepare", "--data", "grid.h5", "--name", "G"]) == 2
    assert "out of order" in capsys.readouterr().err
    assert data_main(["prepare", "--data", "grid.h5", "--name", "G", "--sort-time"]) == 2
    assert "10 time stamps on more than one row" in capsys.readouterr().err
    assert data_main(["prepare", "--data", "grid.h5", "--name", "G", "--sort-time", "--repeats", "sum"]) == 2
    assert "1 gap in the time stamps, 30 missing steps of 60 minutes" in capsys.readouterr().err
    assert data_main(["prepare", "--data", "grid.h5", "--name", "G", "--sort-time", "--repeats", "sum", "--fill-gaps",
                      "--null-value", "-1", "--channels", "0"]) == 0
    found = meta("G")
    assert found["grid_shape"] == [6, 5] and found["shape"] == [300, 30] and found["frequency (minutes)"] == 60
    assert found["node_ids"][4:6] == ["r0c4", "r1c0"] and found["time_axis"]["repeated_stamps"] == 10
    signal = np.concatenate([np.load(f"datasets/G/{s}_data.npy") for s in ("train", "val", "test")])
    assert np.array_equal(signal[:90], data[:90, 0].reshape(90, 30))  # channel 0, row-major cells
    assert np.array_equal(signal[95], data[95, 0].ravel() + data[105, 0].ravel())  # the repeated hour: summed
    assert (signal[100:130] == -1).all()
    adj = pickle.loads(Path("datasets/G/adj_mx.pkl").read_bytes())  # the grid's 4 neighbours, both ways
    assert adj.shape == (30, 30) and adj.sum() == 2 * (6 * 4 + 5 * 5) and adj[0, 1] == adj[0, 5] == 1 and adj[0, 6] == 0


@pytest.mark.parametrize("layout", ["TCHW", "THWC"])
def test_channels_first_and_last_read_the_same_cells(workdir, layout):
    data = grid_file(Path("g.h5"), range(200), layout)
    assert data_main(["prepare", "--data", "g.h5", "--name", "G", "--channels", "1"]) == 0
    assert np.array_equal(np.load("datasets/G/train_data.npy"), data[:120, 1].reshape(120, 30))


def test_a_grid_s_zeros_are_counts_by_default_and_a_sensor_s_zeros_are_missing(workdir, capsys):
    data = grid_file(Path("g.h5"), range(200))
    assert (data == 0).any()  # Poisson counts: some cells count nothing in some hours
    assert data_main(["prepare", "--data", "g.h5", "--name", "G"]) == 0
    assert "a grid of counts: a 0 is a reading, nothing is masked (--null-value 0 masks zeros as missing" in \
        capsys.readouterr().err
    assert meta("G")["regular_settings"]["null_val"] is None and meta("G")["missing_share"] == 0
    np.savetxt("flat.csv", data[:, 0].reshape(200, 30), delimiter=",")  # the same cells as columns: sensors
    assert data_main(["prepare", "--data", "flat.csv", "--name", "S", "--step-minutes", "60"]) == 0
    assert meta("S")["regular_settings"]["null_val"] == 0
    assert data_main(["prepare", "--data", "flat.csv", "--name", "F", "--step-minutes", "60", "--grid", "6x5"]) == 0
    assert meta("F")["regular_settings"]["null_val"] is None  # stated a grid: counts
    hours = list(range(0, 100)) + list(range(130, 300))
    grid_file(Path("gaps.h5"), hours)
    assert data_main(["prepare", "--data", "gaps.h5", "--name", "X", "--fill-gaps"]) == 2
    assert capsys.readouterr().err.strip().endswith(
        "--fill-gaps marks the missing steps with the null value, but --null-value is none (a grid's default: its "
        "zeros are counts); give --null-value X, a value the readings never take (e.g. -1), so that they are masked.")


def test_an_ambiguous_grid_shape_asks_for_its_axes(workdir, capsys):
    np.savez("cube.npz", data=np.ones((200, 3, 3, 3)))
    assert data_main(["prepare", "--data", "cube.npz", "--name", "C", "--step-minutes", "60"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: cube.npz: a grid array of shape [200, 3, 3, 3] could be [time, channel, row, column] or [time, row, "
        "column, channel]: say which with --grid-axes TCHW or --grid-axes THWC.")
    assert data_main(["prepare", "--data", "cube.npz", "--name", "C", "--step-minutes", "60", "--grid-axes", "THWC"]) == 0
    assert meta("C")["grid_shape"] == [3, 9] and meta("C")["channels"]["names"] == ["0", "1", "2"]  # side by side


def sliding_windows(series: np.ndarray, x_offsets, y_offsets) -> tuple:
    """Windows one step apart as DCRNN's and ST-SSL's scripts cut them: `x` [S, Tx, ...], `y` [S, Ty, ...]."""
    x_offsets, y_offsets = np.asarray(x_offsets), np.asarray(y_offsets)
    nows = range(-x_offsets.min(), len(series) - y_offsets.max())
    return np.stack([series[t + x_offsets] for t in nows]), np.stack([series[t + y_offsets] for t in nows])


def save_windows(path, x, y, x_offsets, y_offsets) -> None:
    np.savez_compressed(path, x=x, y=y, x_offsets=np.reshape(x_offsets, (-1, 1)),
                        y_offsets=np.reshape(y_offsets, (-1, 1)))


# ST-SSL's inputs: the last 4 hours and the same hours +- 2 of the three days before; one hour ahead
STSSL_X = np.sort(np.concatenate([*[np.arange(-24 * d - 1, -24 * d + 4) for d in (1, 2, 3)], np.arange(-3, 1)]))


def test_st_ssl_windows_of_a_grid_prepare_as_the_series_they_slide_over(workdir, capsys):
    """A folder of `train.npz` / `val.npz` / `test.npz` windows (ST-SSL's NYCBike1 layout: `[S, T, H * W, 2]`, the
    inputs skipping steps) is read back as the one series; `--grid` states the grid the file does not."""
    rng = np.random.default_rng(2)
    series = rng.poisson(5, size=(400, 6 * 5, 2)).astype(float)  # [L, H * W, C], cells row-major
    x, y = sliding_windows(series, STSSL_X, [1])
    Path("stssl").mkdir()
    for name, part in (("train", slice(0, 200)), ("val", slice(200, 250)), ("test", slice(250, None))):
        save_windows(f"stssl/{name}.npz", x[part], y[part], STSSL_X, [1])
    assert data_main(["prepare", "--data", "stssl", "--name", "S", "--step-minutes", "60", "--grid", "6x5",
                      "--channels", "0,1", "--null-value", "none"]) == 0
    err = capsys.readouterr().err
    assert (f"train.npz, val.npz, test.npz: 200 + 50 + {len(x) - 250} sliding windows of 20 steps (offsets -73 to 1), "
            "read back as the one series they slide over: 400 steps of 30 nodes, 2 channels") in err
    found = meta("S")
    assert found["grid_shape"] == [6, 10] and found["node_ids"][:3] == ["r0c0@0", "r0c0@1", "r0c1@0"]
    assert [f["file"] for f in found["source"]["files"]] == ["train.npz", "val.npz", "test.npz"]
    signal = np.concatenate([np.load(f"datasets/S/{s}_data.npy") for s in ("train", "val", "test")])
    assert np.array_equal(signal, series.reshape(400, 60))  # every step, cell and channel, node-major


def test_dcrnn_windows_in_one_file_prepare_and_say_which_channel_they_keep(workdir, capsys):
    series = np.random.default_rng(3).normal(60, 5, size=(300, 7, 2))  # channel 1: DCRNN's time of day
    x, y = sliding_windows(series, np.arange(-11, 1), np.arange(1, 13))
    save_windows("train.npz", x, y, np.arange(-11, 1), np.arange(1, 13))
    assert data_main(["prepare", "--data", "train.npz", "--name", "D", "--step-minutes", "5"]) == 0
    assert "channel 0 of 2 kept (--channels 0,1,... keeps more" in capsys.readouterr().err
    assert np.array_equal(np.concatenate([np.load(f"datasets/D/{s}_data.npy") for s in ("train", "val", "test")]),
                          series[..., 0].astype(np.float32))  # the layout stores float32
    assert meta("D")["node_ids"] is None  # no ids and no grid: nodes by their index


@pytest.mark.parametrize("case", ["shuffled", "gap between files", "files of other windows", "no overlap"])
def test_windows_that_are_not_one_series_are_refused(workdir, capsys, case):
    series = np.arange(200 * 3, dtype=float).reshape(200, 3)
    x_offsets, y_offsets = (np.array([-4, -2, 0]), np.array([2])) if case == "no overlap" else (np.arange(-3, 1), [1])
    x, y = sliding_windows(series, x_offsets, y_offsets)
    Path("w").mkdir()
    cut = {"train": slice(0, 100), "val": slice(100, 150), "test": slice(150, None)}
    if case == "gap between files":
        cut["val"] = slice(101, 150)  # one window left out
    if case == "shuffled":
        x[[10, 11]], y[[10, 11]] = x[[11, 10]], y[[11, 10]]
    for name, part in cut.items():
        other = case == "files of other windows" and name == "test"
        save_windows(f"w/{name}.npz", x[part][:, 1:] if other else x[part], y[part],
                     x_offsets[1:] if other else x_offsets, y_offsets)
    assert data_main(["prepare", "--data", "w", "--name", "W", "--step-minutes", "5"]) == 2
    err = capsys.readouterr().err.strip()
    expected = {
        "shuffled": "window 9 (offset -2) and another window disagree about step 10 of the series: these are not "
                    "windows one step apart, in order, of one series (or the files do not follow each other).",
        "gap between files": "window 99 (offset -2) and another window disagree about step 100 of the series",
        "files of other windows": "the files' windows take different steps (x_offsets / y_offsets differ); give files "
                                  "cut from one series with one window.",
        "no overlap": "no two steps of a window are one step apart (offsets -4, -2, 0, 2), so nothing shows that the "
                      "windows are one step apart."}[case]
    assert err.startswith("error: w/train.npz, w/val.npz, w/test.npz: ") and expected in err
    assert not Path("datasets/W").exists()


def test_a_runs_grid_tells_the_axes_of_a_file_whose_shape_does_not():
    """`forecast --data` hands the run's grid (H, W, C) to the reader: a small grid's `[T, 2, 4, 3]` reads as TCHW for a
    run of 4 x 3 cells and 2 channels, as THWC for one of 2 x 4 cells and 3 channels, and is refused for another."""
    from stvfm_plugin.data.readers import grid_signal

    array = np.arange(10 * 2 * 4 * 3, dtype=float).reshape(10, 2, 4, 3)
    cells, shape, _ = grid_signal(array, None, "f", like=(4, 3, 2))
    assert shape == (4, 3) and np.array_equal(cells[:, :, 1], array[:, 1].reshape(10, 12))
    cells, shape, _ = grid_signal(array, None, "f", like=(2, 4, 3))
    assert shape == (2, 4) and np.array_equal(cells, array.reshape(10, 8, 3))
    with pytest.raises(UserError, match=r"could be \[time, channel, row, column\] or \[time, row, column, channel\]"):
        grid_signal(array, None, "f", like=(6, 5, 2))


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data/taxi_nyc is absent (the real TaxiNYC files)")
def test_the_taxinyc_files_are_refused_as_published_and_the_preset_prepares_them(workdir, capsys):
    assert data_main(["prepare", "--data", str(SHARED / "NYC14_Taxi_M16x8_T60_InOut.h5"), "--name", "T"]) == 2
    assert "the time stamps are out of order (row 2185, 2014-03-24 00:00:00" in capsys.readouterr().err
    assert data_main(["prepare", "--preset", "TaxiNYC", "--src", str(SHARED), "--years", "2014"]) == 0
    err = capsys.readouterr().err
    assert "1728 time stamps on more than one row (1728 extra rows): combined by their sum" in err
    assert "1 gap in the time stamps, 696 steps in all (longest 696)" in err
    found = meta("TaxiNYC")
    assert found["shape"] == [8760, 256] and found["grid_shape"] == [16, 16]  # 16 x 8 cells, start and end side by side
    assert found["channels"]["names"] == ["start", "end"] and found["node_ids"][:2] == ["r0c0@start", "r0c0@end"]
    assert found["regular_settings"]["null_val"] == -1 and found["time_axis"]["filled_steps"] == 696
    adj = pickle.loads(Path("datasets/TaxiNYC/adj_mx.pkl").read_bytes())
    cells = 2 * (16 * 7 + 15 * 8)  # 4 neighbours, both ways
    assert adj.shape == (256, 256) and adj.sum() == 2 * cells + 256  # per channel, and each cell's two channels
    coords = np.load("datasets/TaxiNYC/coords.npy")
    assert coords.shape == (256, 2) and list(coords[0]) == [-0.5, 0.5] and list(coords[2]) == [-0.5, 1.5]


def test_from_and_until_keep_a_time_range_on_the_data_s_clock(workdir, capsys):
    frame(range(0, 60 * 400, 60)).to_csv("hourly.csv")
    assert data_main(["prepare", "--data", "hourly.csv", "--name", "R", "--from", "2024-01-02T00:30",
                      "--until", "2024-01-12"]) == 0
    assert "kept the 239 steps from 2024-01-02 01:00:00 to before 2024-01-12 00:00:00" in capsys.readouterr().err
    found = meta("R")
    assert found["start_time"] == "2024-01-02T01:00:00" and found["shape"] == [239, 3]
    assert found["source"]["from"] == "2024-01-02T01:00:00" and found["source"]["until"] == "2024-01-12T00:00:00"
    assert data_main(["prepare", "--data", "hourly.csv", "--name", "R2", "--until", "2023-12-01"]) == 2
    assert "give a range within the data's 2024-01-01 00:00:00 to 2024-01-17 16:00:00" in capsys.readouterr().err


@pytest.mark.parametrize("case", reliability.PREPARE_GRID, ids=lambda c: " ".join(c.args))
def test_bad_grid_input_is_one_line_and_writes_nothing(workdir, capsys, case):
    np.savez("five.npz", data=np.ones((200, 2, 6, 5, 3)))
    np.savez("grid.npz", data=np.ones((200, 2, 6, 5)))
    np.savetxt("signal.csv", 50 + np.arange(360).reshape(120, 3) % 7, delimiter=",")
    with h5py.File("stamps.h5", "w") as f:
        f["data"] = np.ones((200, 2, 6, 5))
        f["date"] = np.array([(T0 + dt.timedelta(hours=h)).strftime("%Y%m%d%H").encode() for h in range(199)])
    Path("windows").mkdir()
    save_windows("windows/train.npz", *sliding_windows(np.ones((50, 3)), np.arange(-3, 1), [1]), np.arange(-3, 1), [1])
    before = sorted(p.name for p in workdir.iterdir())
    code = data_main(reliability.PREPARE_BASE.split()[3:] + list(case.args))
    err = capsys.readouterr().err
    assert code == 2 and err.strip() == f"error: {case.message}" and "Traceback" not in err
    assert sorted(p.name for p in workdir.iterdir()) == before


def test_the_dcrnn_presets_fill_a_missing_hour_of_their_index_as_missing_readings(workdir, capsys):
    raw = workdir / "raw"
    raw.mkdir()
    minutes = [m for m in range(0, 5 * 600, 5) if not 600 <= m < 660]  # the hour a spring clock change skips
    frame(minutes, columns=("7", "8", "9")).to_hdf(raw / "metr-la.h5", key="df")
    (raw / "adj_mx.pkl").write_bytes(pickle.dumps([["7", "8", "9"], {"7": 0, "8": 1, "9": 2}, np.eye(3, dtype=np.float32)]))
    assert data_main(["prepare", "--preset", "METR-LA", "--src", str(raw)]) == 0
    assert "1 gap in the time stamps, 12 steps in all (longest 12): filled as missing readings" in capsys.readouterr().err
    found = meta("METR-LA")
    assert found["shape"] == [600, 3] and found["time_axis"]["filled_steps"] == 12 and found["start_time"] == \
        "2024-01-01T00:00:00"
