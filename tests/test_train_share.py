"""`--train-fraction`: the most recent share of the training split, the scaler fitted on it, bad fractions refused,
and every model trains and forecasts with it."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from stvfm_plugin.baselines import BUILDERS
from stvfm_plugin.data.info import DatasetInfo
from stvfm_plugin.data.train_share import RecentShareDataset, kept_steps, train_share
from stvfm_plugin.errors import UserError
from stvfm_plugin.forecaster import Forecaster
from stvfm_plugin.run import main

import reliability
from conftest import STID_TINY, write_config
from test_own_data import TINY_STVFM, grid_data, run_one  # noqa: F401  (grid_data: a fixture)


@pytest.mark.parametrize("steps, fraction, kept", [(1000, 0.1, 100), (1001, 0.1, 101), (10, 0.01, 1), (7, 1.0, 7),
                                                   (3, 0.3, 1), (1000, 0.333, 333)])
def test_a_fraction_keeps_its_share_rounded_up(steps, fraction, kept):
    assert kept_steps(steps, fraction) == kept


@pytest.mark.parametrize("fraction", [0.1, 0.5, 1.0])
def test_the_kept_part_is_the_most_recent_one_and_only_training_is_cut(tiny_dataset, fraction):
    full = {mode: np.load(tiny_dataset / f"{mode}_data.npy") for mode in ("train", "val", "test")}
    stamps = np.load(tiny_dataset / "train_timestamps.npy")
    for mode, data in full.items():
        dataset = RecentShareDataset("Tiny", 12, 12, mode, use_timestamps=True, data_file_path=str(tiny_dataset),
                                     train_fraction=fraction)
        if mode == "train":
            keep = math.ceil(len(data) * fraction)
            assert np.array_equal(dataset.data, data[-keep:]) and np.array_equal(dataset.timestamps, stamps[-keep:])
            assert dataset.windows == keep - 23
            last = dataset[dataset.windows - 1]
            assert np.array_equal(last["targets"], data[-12:])  # the last window still ends where validation starts
            # an epoch draws as many windows as one of the whole split: the kept ones over and over
            assert len(dataset) == len(data) - 23
            again = dataset[len(dataset) - 1]
            assert np.array_equal(again["inputs"], dataset[(len(dataset) - 1) % dataset.windows]["inputs"])
        else:
            assert np.array_equal(dataset.data, data)


def test_a_run_fits_its_scaler_on_the_kept_part_records_it_and_forecasts_with_it(tiny_dataset, workdir, capsys):
    cfg = write_config(workdir, STID_TINY)
    assert main(["-c", str(cfg), "--run-dir", "run", "--train-fraction", "0.5", "--set", "num_epochs=1"]) == 0
    train = np.load(tiny_dataset / "train_data.npy")
    kept = train[-math.ceil(len(train) * 0.5):]
    ratio = (len(train) - 23) / (len(kept) - 23)
    assert f"Training on the most recent 50 % of the training split (--train-fraction 0.5): {len(kept):,} of " \
           f"{len(train):,} steps, {len(kept) - 23:,} of {len(train) - 23:,} windows; the scaler is fitted on them, " \
           f"validation and test are unchanged; an epoch draws {len(train) - 23:,} of them (each about {ratio:.1f} " \
           "times), as many steps as an epoch of all of the data" in capsys.readouterr().err
    info = json.loads(Path("run/run_info.json").read_text())
    assert info["train_fraction"] == 0.5 and info["train_windows"] == len(kept) - 23
    assert json.loads(Path("run/run_options.json").read_text())["train_fraction"] == 0.5
    forecaster = Forecaster.load(Path("run"))  # rebuilt from the record: the same kept part
    stats = forecaster.runner.scaler.stats
    assert float(stats["mean"]) == pytest.approx(float(np.mean(kept, dtype=np.float64)), rel=1e-5)
    assert float(stats["mean"]) != pytest.approx(float(np.mean(train, dtype=np.float64)), rel=1e-3)
    assert float(stats["std"]) == pytest.approx(float(np.std(kept, dtype=np.float64)), rel=1e-5)
    assert main(["-c", str(cfg), "--run-dir", "full", "--set", "num_epochs=1"]) == 0
    full = json.loads(Path("full/run_info.json").read_text())
    assert "train_fraction" not in full and full["train_windows"] == len(train) - 23
    assert json.loads(Path("full/cfg.json").read_text())["dataset_type"] != \
        json.loads(Path("run/cfg.json").read_text())["dataset_type"]


def test_resuming_or_evaluating_with_another_fraction_is_refused(tiny_dataset, workdir, capsys):
    cfg = write_config(workdir, STID_TINY)
    assert main(["-c", str(cfg), "--run-dir", "run", "--train-fraction", "0.5", "--set", "num_epochs=1"]) == 0
    capsys.readouterr()
    assert main(["-c", str(cfg), "--run-dir", "run", "--resume", "--set", "num_epochs=2"]) == 2
    assert "--train-fraction 0.5 there, all of the training split here" in capsys.readouterr().err
    assert main(["-c", str(cfg), "--run-dir", "run", "--resume", "--train-fraction", "0.5", "--set", "num_epochs=2"]) == 0
    best = str(next(Path("run").glob("*best_val*.pt")))
    capsys.readouterr()
    assert main(["-c", str(cfg), "--eval", best]) == 2
    assert ("that run trained on --train-fraction 0.5, and its scaler was fitted on that part; evaluate it with the "
            "same (--train-fraction 0.5).") in capsys.readouterr().err
    assert main(["-c", str(cfg), "--eval", best, "--train-fraction", "0.5"]) == 0
    evaluated = json.loads(next(Path("run").glob("eval-*/test_metrics.json")).read_text())["overall"]["MAE"]
    assert evaluated == pytest.approx(json.loads(Path("run/test_metrics.json").read_text())["overall"]["MAE"], rel=1e-6)


@pytest.mark.parametrize("fraction, message", [
    ("0", "--train-fraction 0: give a share of the training split above 0 and at most 1"),
    ("-0.1", "--train-fraction -0.1: give a share of the training split above 0 and at most 1"),
    ("1.5", "--train-fraction 1.5: give a share of the training split above 0 and at most 1"),
    ("0.01", "less than one day (288 steps of 5 minutes): a model could not see the day's rhythm. Give at least"),
    ("0.5", "windows of 12 + 12 steps, fewer than one batch (512). Give at least"),
])
def test_bad_fractions_are_refused_with_one_line_and_leave_no_run_folder(tiny_dataset, workdir, capsys, fraction,
                                                                         message):
    cfg = write_config(workdir, STID_TINY)
    assert main(["-c", str(cfg), "--run-dir", "run", "--train-fraction", fraction, "--set", "num_epochs=1",
                 "--set", "batch_size=512"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not Path("run").exists()


@pytest.mark.parametrize("case", [c for c in reliability.RUN if c.args and c.args[0] == "--train-fraction"],
                         ids=lambda c: " ".join(c.args))
def test_the_reliability_table_s_fractions_are_refused_as_it_says(tiny_dataset, workdir, capsys, case):
    cfg = write_config(workdir, STID_TINY)
    assert main(["-c", str(cfg), "--run-dir", "run", *case.args]) == 2
    err = capsys.readouterr().err
    assert f"error: {case.message}" in err and "Traceback" not in err
    assert not Path("run").exists()


def test_the_suggested_fraction_is_enough(tiny_dataset):
    info = DatasetInfo.load(tiny_dataset)
    with pytest.raises(UserError) as refused:
        train_share(info, 0.5, 12, 12, 512)
    suggested = float(str(refused.value).split("Give at least ")[1].split(",")[0])
    assert train_share(info, suggested, 12, 12, 512).windows >= 512


@pytest.mark.parametrize("model", list(BUILDERS))
def test_every_model_trains_and_forecasts_on_the_most_recent_half(grid_data, model, monkeypatch,  # noqa: F811
                                                                  tiny_language_models):
    extra = TINY_STVFM if model == "STVFM" else []
    if model in ("GPT4TS", "STLLM"):
        extra = ["--set", f"model_config.backbone={tiny_language_models['gpt2' if model == 'GPT4TS' else 'bert']}"]
    run = run_one(grid_data, model, "Grid", extra + ["--train-fraction", "0.5"], monkeypatch, tag="-half")
    info = json.loads((run / "run_info.json").read_text())
    train = len(np.load(grid_data / "datasets" / "Grid" / "train_data.npy"))
    span = info["input_len"] + info["output_len"]
    assert info["train_fraction"] == 0.5 and info["train_windows"] == math.ceil(train / 2) - span + 1
    table = Forecaster.load(run).forecast()
    assert np.isfinite(table["forecast"].to_numpy()).all()
