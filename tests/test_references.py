"""Naive references: their forecasts, their scoring (the same windows, masks and metrics as a BasicTS run) and how the
leaderboard report ranks and flags against them."""
from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

from stvfm_plugin.errors import UserError
from stvfm_plugin.leaderboard.markdown import reference_flags, verdict
from stvfm_plugin.leaderboard.rows import ModelRow, SeedRun, _rank
from stvfm_plugin.references import reference_forecasts, score

from conftest import STID_TINY, python, write_config

DAY = 4  # steps per day of the hand-made series


def _series(days: int = 4, nodes: int = 2) -> np.ndarray:
    steps = np.arange(days * DAY, dtype=float)
    return np.stack([10 + steps + 100 * k for k in range(nodes)], axis=1)  # [L, N], distinct everywhere


def _stamps(length: int) -> np.ndarray:
    steps = np.arange(length)
    return np.stack([(steps % DAY) / DAY, ((steps // DAY) % 7) / 7], axis=1)


def test_persistence_repeats_the_last_reading_that_is_not_missing():
    series = _series()
    series[13, 0] = 0.0  # the last input step of the first test window is missing for sensor 0
    pred, true = reference_forecasts("Persistence", series, [8, 4, 4], 2, 1, 0.0, DAY, None)
    assert pred.shape == true.shape == (2, 1, 2)
    assert pred[0, 0].tolist() == [series[12, 0], series[13, 1]] and true[0, 0].tolist() == series[14].tolist()


@pytest.mark.parametrize("method,period", [("SeasonalDay", DAY), ("SeasonalWeek", 7 * DAY)])
def test_seasonal_copies_one_period_back_and_falls_back_to_persistence(method, period):
    series = _series(days=10)
    start = len(series) - 4  # test split: the last 4 steps; windows of 2 + 2 steps
    series[start + 2 - period, 1] = 0.0  # the source of sensor 1's first forecast step is missing
    pred, _ = reference_forecasts(method, series, [start - 8, 8, 4], 2, 2, 0.0, DAY, None)
    assert pred[0, 0, 0] == series[start + 2 - period, 0] and pred[0, 1, 0] == series[start + 3 - period, 0]
    assert pred[0, 0, 1] == series[start + 1, 1]  # persistence


def test_seasonal_week_needs_a_week_of_history():
    with pytest.raises(UserError, match=r"SeasonalWeek: the data do not reach one week before the test split's first "
                                        r"forecast \(14 steps of history, 28 needed\)"):
        reference_forecasts("SeasonalWeek", _series(), [8, 4, 4], 2, 1, 0.0, DAY, None)


def test_seasonal_median_takes_the_median_of_the_last_three_weeks_and_skips_missing_copies():
    week = 7 * DAY
    series = _series(days=28)
    series[-4 + 2 - 2 * week, 0] = 1e6  # an unusual week: the median is not moved by it
    start = len(series) - 4  # test split: the last 4 steps; windows of 2 + 2 steps
    series[start + 2 - week, 1] = 0.0  # sensor 1, first forecast step: one copy missing, the median of the other two
    series[start + 3 - np.array([1, 2, 3]) * week, 1] = 0.0  # second step: every copy missing, persistence
    pred, _ = reference_forecasts("SeasonalMedian", series, [start - 8, 8, 4], 2, 2, 0.0, DAY, None)
    copies = [series[start + 2 - k * week, 0] for k in (1, 2, 3)]
    assert pred[0, 0, 0] == np.median(copies) == series[start + 2 - week, 0]  # of (a, 1e6, a - 2 weeks): a
    assert pred[0, 0, 1] == np.mean([series[start + 2 - k * week, 1] for k in (2, 3)])
    assert pred[0, 1, 1] == series[start + 1, 1]  # persistence
    with pytest.raises(UserError, match=r"SeasonalMedian: the data do not reach 3 weeks before the test split's first "
                                        r"forecast \(14 steps of history, 84 needed\)"):
        reference_forecasts("SeasonalMedian", _series(), [8, 4, 4], 2, 1, 0.0, DAY, None)


def test_historical_mean_per_time_of_week_with_time_of_day_fallback():
    series = _series(days=9, nodes=1)
    train = 8 * DAY  # days 0..7: every weekday once, day 0 and day 7 share a weekday
    pred, _ = reference_forecasts("HistoricalMean", series, [train, 2, 2], 1, 1, 0.0, DAY, _stamps(len(series)))
    step = train + 2 + 1  # the forecast step of the first test window
    same_slot = [t for t in range(train) if t % DAY == step % DAY and (t // DAY) % 7 == (step // DAY) % 7]
    assert pred[0, 0, 0] == pytest.approx(series[same_slot, 0].mean())


def test_historical_mean_on_a_share_of_the_training_split_learns_from_the_kept_steps_only():
    series = _series(days=16, nodes=1)
    train = 14 * DAY  # two weeks: each slot of the week twice
    stamps = _stamps(len(series))
    full, _ = reference_forecasts("HistoricalMean", series, [train, 1, DAY], 1, 1, 0.0, DAY, stamps)
    half, _ = reference_forecasts("HistoricalMean", series, [train, 1, DAY], 1, 1, 0.0, DAY, stamps, train_from=7 * DAY)
    step = train + 1 + 1
    same_slot = [t for t in range(train) if t % DAY == step % DAY and (t // DAY) % 7 == (step // DAY) % 7]
    assert full[0, 0, 0] == pytest.approx(series[same_slot, 0].mean())  # both weeks
    assert half[0, 0, 0] == pytest.approx(series[same_slot[-1], 0])  # the most recent week alone
    persistence = [reference_forecasts("Persistence", series, [train, 1, DAY], 1, 1, 0.0, DAY, stamps, start)[0]
                   for start in (0, 7 * DAY)]
    assert np.array_equal(*persistence)  # learns nothing from training: the same at any share


def test_a_few_shot_reference_row_runs_the_reference_on_the_kept_share(tiny_dataset, workdir):
    from pathlib import Path

    from stvfm_plugin.leaderboard.runs import Budget, train_command

    budget = Budget(dataset="Tiny", models=["HistoricalMean:train_fraction=0.5"], seeds=[1], epochs=1, patience=1)
    command = train_command(budget, "HistoricalMean:train_fraction=0.5", 1, Path("ref"), "cpu", False)
    assert command[command.index("--method") + 1] == "HistoricalMean" and command[-2:] == ["--train-fraction", "0.5"]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    info = json.loads((workdir / "ref" / "run_info.json").read_text())
    train = len(np.load(tiny_dataset / "train_data.npy"))
    assert info["train_fraction"] == 0.5 and info["train_steps"] == -(-train // 2)
    proc = subprocess.run([python(), "-m", "stvfm_plugin.leaderboard", "run", "--dataset", "Tiny", "--models",
                           "HistoricalMean:window=3", "--out", "lb"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "a naive reference has no config to change; its only row setting is " \
                                      "train_fraction" in proc.stderr


def test_scored_like_a_basicts_run_on_its_saved_test_results(tiny_dataset, workdir):
    cfg = write_config(workdir, STID_TINY)
    proc = subprocess.run([python(), "-m", "basicts.run", "-c", str(cfg), "--save-results", "--run-dir", "run"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    saved = {k: np.load(workdir / "run" / "test_results" / f"{k}.npy").astype(np.float64) for k in ("prediction", "targets")}
    from stvfm_plugin.data.info import DatasetInfo

    info = DatasetInfo.load("Tiny")
    series = np.concatenate([np.load(info.folder / f"{s}_data.npy") for s in ("train", "val", "test")])
    _, targets = reference_forecasts("Persistence", series[..., 0] if series.ndim == 3 else series,
                                     [info.split_lengths[s] for s in ("train", "val", "test")], 12, 12, info.null_val,
                                     info.steps_per_day, None)
    kept = saved["targets"].reshape(targets.shape)
    missing = np.isnan(kept)  # the run saves missing readings as NaN
    assert missing.any() and np.array_equal(missing, np.isclose(targets, info.null_val, atol=5e-5))
    assert np.allclose(targets[~missing], kept[~missing], atol=1e-4)  # the same windows
    expected = json.loads((workdir / "run" / "test_metrics.json").read_text())
    found = score(saved["prediction"].reshape(targets.shape), targets, info.null_val, (3, 6, 12))
    assert set(found) == {"overall", "horizon_3", "horizon_6", "horizon_12"}  # the run adds its intervals' coverage
    for group, values in ((g, v) for g, v in expected.items() if g in found):
        for metric, value in values.items():
            assert found[group][metric] == pytest.approx(value, rel=1e-5), (group, metric)


def test_reference_command_writes_a_run_folder_the_leaderboard_reads(tiny_dataset, workdir):
    proc = subprocess.run([python(), "-m", "stvfm_plugin.references", "--dataset", "Tiny", "--method", "Persistence",
                           "--run-dir", "ref"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("Persistence on Tiny: test MAE ")
    status = json.loads((workdir / "ref" / "status.json").read_text())
    info = json.loads((workdir / "ref" / "run_info.json").read_text())
    assert status["state"] == "finished" and info["trainable_params"] == 0 and info["epochs_run"] == 0
    assert set(json.loads((workdir / "ref" / "test_metrics.json").read_text())) == {
        "overall", "horizon_3", "horizon_6", "horizon_12"}


def test_tune_refuses_references(tiny_dataset, workdir):
    proc = subprocess.run([python(), "-m", "stvfm_plugin.leaderboard", "tune", "--dataset", "Tiny", "--models",
                           "Persistence", "--out", "t"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and proc.stderr.strip() == (
        "error: Persistence: the naive references learn nothing and are scored on the test split; they are leaderboard "
        "rows (`run`), not tuning candidates.")


def _row(model: str, *maes: float) -> ModelRow:
    return ModelRow(model, [SeedRun(k, "finished", {"overall": {"MAE": m}}) for k, m in enumerate(maes, 1)])


def test_report_flags_models_behind_the_best_reference_and_never_takes_one_as_the_best_baseline():
    rows = [_row("STVFM", 3.0, 3.1), _row("STID", 3.6, 3.6), _row("SeasonalWeek", 3.5, 3.5), _row("Persistence", 4.4, 4.4)]
    _rank(rows)
    flags = "\n".join(reference_flags(rows))
    assert "The best is SeasonalWeek." in flags and "**Not better than the best naive reference: STID (3.600).**" in flags
    said = "\n".join(verdict(rows, [1, 2]))
    assert "ST-VFM / best baseline (STID): 3.050 / 3.600" in said  # the reference ranks above STID, yet is no baseline
    assert reference_flags([_row("STVFM", 3.0), _row("STID", 3.6)]) == []  # no reference row: nothing is said
    _rank(ahead := [_row("STID", 3.0), _row("Persistence", 4.0)])
    assert reference_flags(ahead)[-1] == "Every ranked model beats Persistence."
    _rank(alone := [_row("SeasonalWeek", 3.5), _row("Persistence", 4.0), ModelRow("STID", [])])
    assert reference_flags(alone)[-1] == "No trained model has a test result yet."  # not "every ranked model beats it"
