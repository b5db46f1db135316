"""The command line: `python -m basicts.run`, its options, its run folders and its error messages."""
from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from stvfm_plugin.config_tools import apply_overrides, load_config, parse_override, parse_value
from stvfm_plugin.data.synth import SynthOptions
from stvfm_plugin.errors import UserError
from stvfm_plugin.protocols import FROM_DATASET
from stvfm_plugin.records import Outcome
from stvfm_plugin.run import available_cores, main, set_threads

import reliability
from conftest import CONFIGS, STID_TINY, finite_metrics, python, write_config


def run_folders(root: Path) -> list[Path]:
    return sorted(p.parent for p in root.glob("checkpoints/**/cfg.json"))


@pytest.mark.parametrize("command", [[python(), "-m", "basicts.run", "-h"], [python(), "-m", "stvfm_plugin.run", "-h"],
                                     ["stvfm-run", "-h"]])
def test_help(command):
    if command[0] == "stvfm-run":
        exe = shutil.which("stvfm-run") or str(Path(python()).parent / "stvfm-run")
        command = [exe, "-h"]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    assert "--cfg" in out and "--gpus" in out and "--set" in out and "--eval" in out and "--resume" in out


def test_demo_commands_end_to_end_share_one_demo_set(workdir):
    """The literal user commands, in a fresh directory: STID_Demo generates the demo set, trains and evaluates;
    STVFM_Demo then runs on the same set in the same folder."""
    proc = subprocess.run([python(), "-m", "basicts.run", "-c", str(CONFIGS / "STID_Demo.py"), "-g", "cpu",
                           "--set", "num_epochs=1"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Dataset Synth64n14d5m not found in datasets/Synth64n14d5m: generating that synthetic set" in proc.stderr
    proc = subprocess.run([python(), "-m", "basicts.run", "-c", str(CONFIGS / "STVFM_Demo.py"), "-g", "cpu",
                           "--set", "num_epochs=1", "--set", "model_config.backbone=test_vit",
                           "--set", "model_config.pretrained=False"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "generating" not in proc.stderr and "Traceback" not in proc.stderr
    runs = run_folders(workdir)
    assert [r.parts[-4] for r in runs] == ["STID", "STVFM"]
    for run in runs:
        metrics = json.loads((run / "test_metrics.json").read_text())
        assert set(metrics) == {"overall", "horizon_3", "horizon_6", "horizon_12", "coverage_0.9", "width_0.9"}
        assert set(metrics["overall"]) == {"MAE", "RMSE", "MAPE"} and finite_metrics(metrics)


def test_train_twice_gives_two_fresh_runs_and_eval_reproduces(tiny_dataset, workdir):
    cfg = write_config(workdir, STID_TINY)
    assert main(["-c", str(cfg), "-g", "cpu", "--save-results"]) == 0
    assert main(["-c", str(cfg), "-g", "cpu"]) == 0
    first, second = run_folders(workdir)
    assert first.parent == second.parent and first != second  # same config md5, separate runs
    for run in (first, second):
        info = json.loads((run / "run_info.json").read_text())
        assert info["epochs_run"] == 2 and len(info["seconds_per_epoch"]) == 2  # trained, not resumed
    trained = json.loads((first / "test_metrics.json").read_text())

    prediction = np.load(first / "test_results" / "prediction.npy")
    targets = np.load(first / "test_results" / "targets.npy")
    assert prediction.shape == targets.shape and prediction.shape[1:] == (12, 12)
    assert prediction.shape[0] == np.load("datasets/Tiny/test_data.npy").shape[0] - 23

    ckpt = first / "STID_best_val_MAE.pt"
    assert main(["-c", str(cfg), "--eval", str(ckpt)]) == 0
    (eval_dir,) = first.glob("eval-*")
    evaluated = json.loads((eval_dir / "test_metrics.json").read_text())
    for group in trained:
        for name, value in trained[group].items():
            assert evaluated[group][name] == pytest.approx(value, rel=1e-6)


def test_resume_continues_the_latest_run(tiny_dataset, workdir):
    cfg = write_config(workdir, STID_TINY)
    assert main(["-c", str(cfg), "--set", "num_epochs=1"]) == 0
    with pytest.raises(SystemExit):
        main(["-c", str(cfg), "--resume", "--set", "num_epochs=1", "--bogus"])
    # same config (num_epochs=1) -> resume finds the run; nothing is left to train
    assert main(["-c", str(cfg), "--resume", "--set", "num_epochs=1"]) == 0
    assert len(run_folders(workdir)) == 1


def test_resumed_run_keeps_the_epochs_recorded_before_it_stopped(tiny_dataset, workdir):
    cfg = write_config(workdir, STID_TINY)
    run = workdir / "run"
    assert main(["-c", str(cfg), "--run-dir", str(run), "--set", "num_epochs=1"]) == 0
    before = json.loads((run / "run_info.json").read_text())
    assert main(["-c", str(cfg), "--run-dir", str(run), "--resume", "--set", "num_epochs=2"]) == 0
    after = json.loads((run / "run_info.json").read_text())
    assert after["epochs_run"] == 2 and after["seconds_per_epoch"][0] == before["seconds_per_epoch"][0]
    assert after["peak_memory_mb"]["mb"] >= before["peak_memory_mb"]["mb"]
    assert before["cpu_threads"] == after["cpu_threads"] == [torch.get_num_threads()]


def test_every_epoch_trains_on_every_batch(tiny_dataset, workdir, monkeypatch):
    """BasicTS 1.1.0 stops one step early, so the last epoch of a run would skip its last batch."""
    from collections import Counter

    from stvfm_plugin.runner import PluginRunner

    steps, original = Counter(), PluginRunner._optimizer_step

    def counting(self):
        steps[self.epoch] += 1
        return original(self)

    monkeypatch.setattr(PluginRunner, "_optimizer_step", counting)
    cfg = write_config(workdir, STID_TINY)
    assert main(["-c", str(cfg), "--run-dir", "run", "--set", "num_epochs=3"]) == 0
    batches = -(-(np.load("datasets/Tiny/train_data.npy").shape[0] - 23) // 32)  # samples of 12 + 12 steps, batch 32
    assert dict(steps) == {1: batches, 2: batches, 3: batches}


def test_threads_option_is_used_and_recorded(tiny_dataset, workdir):
    cfg = write_config(workdir, STID_TINY)
    before = torch.get_num_threads()
    try:
        assert main(["-c", str(cfg), "--run-dir", "run", "--threads", "1", "--set", "num_epochs=1"]) == 0
        assert json.loads(Path("run/run_info.json").read_text())["cpu_threads"] == [1]
    finally:
        torch.set_num_threads(before)


def test_validation_and_test_run_under_inference_mode(tiny_dataset, workdir, monkeypatch):
    from basicts.runners import BasicTSRunner
    from basicts.utils import RunnerStatus

    seen = []
    original = BasicTSRunner._forward

    def recording(self, model, data, step, epoch=None):
        seen.append((self.status, torch.is_inference_mode_enabled()))
        return original(self, model, data, step, epoch)

    monkeypatch.setattr(BasicTSRunner, "_forward", recording)
    assert main(["-c", str(write_config(workdir, STID_TINY)), "--set", "num_epochs=1"]) == 0
    modes = {status: {mode for s, mode in seen if s == status} for status, _ in seen}
    assert modes[RunnerStatus.TRAINING] == {False}
    assert modes[RunnerStatus.VALIDATING] == {True} and modes[RunnerStatus.EVALUATING] == {True}


def test_a_run_flushes_subnormal_floats_on_the_cpu(tiny_dataset, workdir, capsys):
    torch.set_flush_denormal(False)
    assert (torch.tensor([1e-39]) * 1.0).item() != 0.0  # a subnormal float survives by default
    assert main(["-c", str(write_config(workdir, STID_TINY)), "--set", "num_epochs=1"]) == 0
    assert "CPU: subnormal floats are flushed to zero" in capsys.readouterr().err
    assert (torch.tensor([1e-39]) * 1.0).item() == 0.0


def test_threads_default_to_every_available_core_unless_told_otherwise(monkeypatch):
    before = torch.get_num_threads()
    try:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
        cores = available_cores()
        assert set_threads(None) == (f"CPU threads: {cores} (every available core, fewer while other processes keep cores "
                                      "busy; --threads N to fix it)")
        assert torch.get_num_threads() == cores
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        assert set_threads(None) == "CPU threads: 1 (OMP_NUM_THREADS)" and torch.get_num_threads() == 1
        assert set_threads(1) == "CPU threads: 1 (--threads)"
        too_many = set_threads(available_cores() + 1)
        assert f"WARNING: more threads than the {available_cores()} core(s) this process may use" in too_many
        assert too_many.endswith(f"give --threads {available_cores()} or fewer")
        with pytest.raises(UserError, match="--threads 0: give 1 or more"):
            set_threads(0)
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("case", [c for c in reliability.RUN if "--resume" in c.args and "done" not in c.args],
                         ids=["missing", "empty"])
def test_resume_of_a_run_folder_without_checkpoint_is_refused(tiny_dataset, workdir, capsys, case):
    if case.setup:
        (workdir / "empty").mkdir()
    assert main(["-c", str(write_config(workdir, STID_TINY)), *case.args]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == f"error: {case.message}"
    assert (workdir / "empty").exists() == bool(case.setup) and not run_folders(workdir)
    assert not case.setup or not any((workdir / "empty").iterdir())


CRASHING = STID_TINY.replace("from stvfm_plugin.protocols import traffic_protocol", """from stvfm_plugin.protocols import traffic_protocol
import os, signal
from basicts.runners.callback import BasicTSCallback, EarlyStopping


class CrashAt(BasicTSCallback):
    def on_epoch_start(self, runner, epoch):
        if os.environ.get("CRASH_AT") == str(epoch):
            # Ctrl-C in a terminal: Python's handler, even where the test runs with SIGINT ignored (a background job)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            os.kill(os.getpid(), getattr(signal, os.environ["CRASH_SIGNAL"]))
""").replace("num_epochs=2,", "num_epochs=5, callbacks=[CrashAt(), EarlyStopping(patience=2)],")


@pytest.mark.parametrize("sig", ["SIGINT", "SIGKILL"])
def test_interrupted_then_resumed_run_equals_the_uninterrupted_one(tiny_dataset, workdir, sig):
    cfg = write_config(workdir, CRASHING)
    command = [python(), "-m", "basicts.run", "-c", str(cfg)]
    whole = subprocess.run(command + ["--run-dir", "whole"], capture_output=True, text=True, timeout=600)
    assert whole.returncode == 0, whole.stderr[-2000:]
    cut = subprocess.run(command + ["--run-dir", "cut"], capture_output=True, text=True, timeout=600,
                         env={**os.environ, "CRASH_AT": "3", "CRASH_SIGNAL": sig})
    assert cut.returncode == (130 if sig == "SIGINT" else -9) and not (workdir / "cut" / "test_metrics.json").exists()
    if sig == "SIGINT":  # after epoch 2's checkpoint: the line says how to go on
        assert cut.stderr.strip().splitlines()[-1] == ("interrupted: cut keeps the last checkpoint; the same command "
                                                       "with --resume --run-dir cut continues it.")
    resumed = subprocess.run(command + ["--run-dir", "cut", "--resume"], capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "Resumed from epoch 2" in resumed.stderr + resumed.stdout
    expected = json.loads((workdir / "whole" / "test_metrics.json").read_text())
    assert json.loads((workdir / "cut" / "test_metrics.json").read_text()) == expected
    assert json.loads((workdir / "cut" / "run_info.json").read_text())["epochs_run"] == \
        json.loads((workdir / "whole" / "run_info.json").read_text())["epochs_run"]


def test_resume_without_earlier_run_is_a_clear_error(tiny_dataset, workdir, capsys):
    cfg = write_config(workdir, STID_TINY)
    assert main(["-c", str(cfg), "--resume"]) == 2
    assert "--resume: no earlier run of this config" in capsys.readouterr().err


# ---- clear errors -------------------------------------------------------------------------------------

def error_of(argv, capsys) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


@pytest.mark.parametrize("module, message", [
    ("stvfm_plugin.run", "interrupted before training began: nothing to resume."),
    ("stvfm_plugin.leaderboard.cli", "interrupted: finished models are kept; run the same command again to go on."),
])
def test_ctrl_c_exits_130_and_says_how_to_go_on(module, message, workdir, monkeypatch, capsys):
    import importlib

    cli = importlib.import_module(module)

    def interrupt(*_):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "run" if module == "stvfm_plugin.run" else "_run", interrupt)
    argv = ["-c", "x.py"] if module == "stvfm_plugin.run" else ["report", "--dataset", "X"]
    assert cli.main(argv) == 130
    assert capsys.readouterr().err.strip() == message


def test_ctrl_c_before_the_first_checkpoint_says_there_is_nothing_to_resume(tiny_dataset, workdir):
    cfg = write_config(workdir, CRASHING)
    cut = subprocess.run([python(), "-m", "basicts.run", "-c", str(cfg), "--run-dir", "early"], capture_output=True,
                         text=True, timeout=600, env={**os.environ, "CRASH_AT": "1", "CRASH_SIGNAL": "SIGINT"})
    assert cut.returncode == 130 and not list((workdir / "early").glob("*.pt"))
    assert cut.stderr.strip().splitlines()[-1] == ("interrupted before the first checkpoint: nothing to resume; run the "
                                                   "command again (without --resume).")
    status = (workdir / "early" / "status.json").read_bytes()
    refused = subprocess.run([python(), "-m", "basicts.run", "-c", str(cfg), "--run-dir", "early", "--resume"],
                             capture_output=True, text=True, timeout=600)
    assert refused.returncode == 2 and "holds no checkpoint, so there is nothing to resume" in refused.stderr
    assert (workdir / "early" / "status.json").read_bytes() == status  # the refusal changed nothing


def test_error_missing_config(workdir, capsys):
    err = error_of(["-c", "nope/STVFM_X.py"], capsys)
    assert "Config file 'nope/STVFM_X.py' does not exist" in err


def test_error_config_without_cfg(workdir, capsys):
    path = write_config(workdir, "x = 1\n")
    assert "defines no CFG" in error_of(["-c", str(path)], capsys)


def test_error_v05_easydict_config(workdir, capsys):
    path = write_config(workdir, "from easydict import EasyDict\nCFG = EasyDict()\nCFG.DESCRIPTION = 'old'\n")
    err = error_of(["-c", str(path)], capsys)
    assert "BasicTS 0.x (v0.5-style EasyDict) config" in err and "BasicTSForecastingConfig" in err


def test_error_config_that_raises(workdir, capsys):
    path = write_config(workdir, "import math\n\nCFG = 1 / 0\n")
    assert "failed to load (line 3): ZeroDivisionError" in error_of(["-c", str(path)], capsys)


@pytest.mark.parametrize("case", [c for c in reliability.RUN if c.args and c.args[0] == "--set"],
                         ids=lambda c: c.args[1])
def test_bad_set_values_get_one_line_and_leave_no_run_folder(tiny_dataset, workdir, capsys, case):
    assert main(["-c", str(write_config(workdir, STID_TINY)), *case.args]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == f"error: {case.message}" and "Traceback" not in err
    assert case.disk == "nothing: no run folder" and not (workdir / "checkpoints").exists()


def _snapshot(folder: Path) -> dict:
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("case", [c for c in reliability.RUN if c.args and c.args[0] == "--run-dir" and "done" in
                                  c.args],
                         ids=lambda c: " ".join(c.args))
def test_a_finished_run_is_never_trained_over_nor_marked(tiny_dataset, workdir, capsys, case):
    cfg = str(write_config(workdir, STID_TINY))
    if "DLinear" in case.setup:
        shutil.copy(CONFIGS / "DLinear.py", workdir / "DLinear.py")
        assert main(["-c", str(workdir / "DLinear.py"), "--dataset", "Tiny", "--run-dir", "done", "--set",
                     "num_epochs=1"]) == 0
    else:
        assert main(["-c", cfg, "--run-dir", "done", "--set", "num_epochs=1"]) == 0
    before = _snapshot(workdir / "done")
    capsys.readouterr()
    assert main(["-c", cfg, *case.args]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == f"error: {case.message}" and "Traceback" not in err
    assert _snapshot(workdir / "done") == before


@pytest.mark.parametrize("case", [c for c in reliability.RUN if c.args and c.args[0] in ("--seed", "--run-dir",
                                  "--max-minutes", "--ckpt-dir") and "--resume" not in c.args and "done" not in c.args
                                  and "lr=1e9" not in c.args], ids=lambda c: " ".join(c.args))
def test_bad_seed_or_run_folder_gets_one_line_and_leaves_nothing(tiny_dataset, workdir, capsys, case):
    if case.setup:
        (workdir / "notes.txt").write_text("mine")
    assert main(["-c", str(write_config(workdir, STID_TINY)), *case.args]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == f"error: {case.message}" and "Traceback" not in err
    assert not (workdir / "checkpoints").exists() and not run_folders(workdir)
    assert not case.setup or (workdir / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("value", ["-1", "-1.0", "0", "7"])
def test_null_val_takes_any_number(tiny_dataset, workdir, value):
    cfg = load_config(write_config(workdir, STID_TINY))
    apply_overrides(cfg, [parse_override(f"null_val={value}")])
    assert isinstance(cfg.null_val, float) and cfg.null_val == float(value)


def test_null_val_minus_one_trains(tiny_dataset, workdir):
    assert main(["-c", str(write_config(workdir, STID_TINY)), "--set", "null_val=-1", "--set", "num_epochs=1"]) == 0
    (run,) = run_folders(workdir)
    assert finite_metrics(json.loads((run / "test_metrics.json").read_text()))


def test_demo_configs_name_their_synthetic_set_by_what_it_is():
    from stvfm_plugin.data.synth import DEMO, synthetic_name, synthetic_options

    names = {path.name: load_config(path).dataset_name for path in CONFIGS.glob("*_Demo.py")}
    assert set(names.values()) == {"Synth64n14d5m"} and synthetic_name(DEMO) == "Synth64n14d5m", names
    assert vars(synthetic_options("Synth12n4d5m-s2")) == vars(SynthOptions(num_nodes=12, num_steps=288 * 4, seed=2))
    assert synthetic_options("Synth12n4d7m") is None and synthetic_options("LosLoop") is None


def test_a_synthetic_folder_holding_another_set_is_refused_not_overwritten(workdir, capsys):
    from stvfm_plugin.data.synth import synth_dataset

    folder = synth_dataset(workdir / "datasets", "Synth12n4d5m", SynthOptions(num_nodes=12, num_steps=288 * 4, seed=1))
    before = (folder / "train_data.npy").read_bytes()
    assert main(["-c", str(CONFIGS / "STID.py"), "--dataset", "Synth12n4d5m"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "error: Dataset folder datasets/Synth12n4d5m holds another set than the synthetic set its name Synth12n4d5m "
        "stands for (seed 1 there, 0 here). Remove or rename that folder.")
    assert (folder / "train_data.npy").read_bytes() == before and not run_folders(workdir)


def test_error_dataset_missing_names_files_and_command(workdir, capsys):
    path = write_config(workdir, STID_TINY.replace('"Tiny"', '"LosLoop"'))
    err = error_of(["-c", str(path)], capsys)
    assert "Dataset 'LosLoop' is not prepared: expected meta.json, train_data.npy" in err
    assert "train_timestamps.npy" in err and str(workdir / "datasets" / "LosLoop") in err
    assert "python -m stvfm_plugin.data prepare --preset LosLoop --src" in err


def test_error_unknown_set_key_lists_close_matches(tiny_dataset, workdir, capsys):
    path = write_config(workdir, STID_TINY)
    err = error_of(["-c", str(path), "--set", "num_epoch=2"], capsys)
    assert "the config has no entry 'num_epoch'" in err and "Close matches: num_epochs" in err
    err = error_of(["-c", str(path), "--set", "model_config.num_layer=2"], capsys)
    assert "STIDConfig has no field 'num_layer'" in err and "num_layers" in err
    err = error_of(["-c", str(path), "--set", "optimizer_params.weight_decai=0"], capsys)
    assert "'weight_decai' is not a parameter of Adam" in err and "weight_decay" in err
    assert "--set expects KEY=VALUE" in error_of(["-c", str(path), "--set", "num_epochs"], capsys)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_error_gpus_without_cuda(tiny_dataset, workdir, capsys):
    path = write_config(workdir, STID_TINY)
    err = error_of(["-c", str(path), "-g", "0"], capsys)
    assert "asks for GPUs, but this machine has no usable CUDA device" in err and "-g cpu" in err
    assert "give 'cpu' or GPU indices" in error_of(["-c", str(path), "-g", "gpu0"], capsys)


@pytest.mark.parametrize("case", [c for c in reliability.RUN if c.args and c.args[0] == "--eval"
                                  and c.message != reliability.NAN_WEIGHTS], ids=lambda c: c.args[1])
def test_eval_of_a_damaged_or_foreign_checkpoint_is_one_line_and_leaves_no_eval_folder(tiny_dataset, workdir, case):
    cfg = write_config(workdir, STID_TINY)
    assert main(["-c", str(cfg), "--run-dir", "run", "--set", "num_epochs=1"]) == 0
    ckpt = (workdir / "run" / "STID_best_val_MAE.pt").read_bytes()
    bad = workdir / case.args[1]
    if bad.name == "truncated.pt":
        bad.write_bytes(ckpt[:1000])
    elif bad.name == "random-bytes.pt":
        bad.write_bytes(np.random.default_rng(0).bytes(5000))
    else:
        bad.write_bytes(ckpt)
        cfg = write_config(workdir, STID_TINY.replace("num_layers=1", "num_layers=2"), "other.py")
    before = bad.read_bytes()
    proc = subprocess.run([python(), "-m", "basicts.run", "-c", str(cfg), *case.args], capture_output=True, text=True,
                          timeout=300)
    err = proc.stderr
    assert proc.returncode == 2 and "Traceback" not in err, err[-2000:]
    assert err.strip().splitlines()[-1].startswith(f"error: {case.message.removesuffix('...')}"), err[-2000:]
    assert bad.read_bytes() == before and not list(workdir.glob("eval-*"))


def test_error_eval_missing_checkpoint(tiny_dataset, workdir, capsys):
    path = write_config(workdir, STID_TINY)
    assert "no such checkpoint file" in error_of(["-c", str(path), "--eval", "x.pt"], capsys)


# ---- overrides ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("text,value", [("2", 2), ("1e-3", 1e-3), ("[1, 50]", [1, 50]), ("true", True),
                                        ("None", None), ("deit_tiny", "deit_tiny"), ("'a b'", "a b")])
def test_parse_value(text, value):
    assert parse_value(text) == value


def test_overrides_reach_the_objects_basicts_builds():
    cfg = load_config(CONFIGS / "STID_PEMS08.py")
    md5 = cfg.md5
    apply_overrides(cfg, map(parse_override, ["num_epochs=2", "lr=0.01", "batch_size=16", "input_len=24",
                                              "model_config.num_layers=2", "lr_scheduler_params.milestones=[1, 2]"]))
    assert cfg.num_epochs == 2 and cfg.ckpt_save_dir == "checkpoints/STID/PEMS08_2_24_12"
    assert cfg.optimizer_params["lr"] == 0.01
    assert cfg.train_batch_size == cfg.val_batch_size == cfg.test_batch_size == 16
    assert cfg.model_config.input_len == 24 and cfg.dataset_params["input_len"] == 24
    assert cfg.model_config.num_layers == 2 and cfg.lr_scheduler_params["milestones"] == [1, 2]
    assert cfg.md5 != md5  # a different config gets a different run folder group


@pytest.mark.parametrize("items, message", [
    (["model_config.unfrozen_layers=7"], r"STLLMConfig: unfrozen_layers=7 must lie in 0..llm_layers \(6\)"),
    (["model_config.llm_layers=0"], r"STLLMConfig: unfrozen_layers=2 must lie in 0..llm_layers \(0\)"),
])
def test_overrides_are_checked_by_the_model_config_as_in_its_constructor(items, message):
    cfg = load_config(CONFIGS / "STLLM.py")
    with pytest.raises(UserError, match=message):
        apply_overrides(cfg, map(parse_override, items))
    cfg = load_config(CONFIGS / "STLLM.py")  # checked once all are applied: the order of --set does not matter
    apply_overrides(cfg, map(parse_override, ["model_config.llm_layers=0", "model_config.unfrozen_layers=0"]))
    assert (cfg.model_config.llm_layers, cfg.model_config.unfrozen_layers) == (0, 0)


def test_stid_pems08_config_matches_basicts_protocol():
    cfg = load_config(CONFIGS / "STID_PEMS08.py")
    assert (cfg.input_len, cfg.output_len, cfg.null_val) == (12, 12, FROM_DATASET)  # the null value: the dataset's
    assert cfg.norm_each_channel is False and cfg.rescale is True
    assert cfg.metrics == ["MAE", "RMSE", "MAPE"] and cfg.eval_horizons == [3, 6, 12]
    assert cfg.optimizer_params == {"lr": 0.002, "weight_decay": 1e-4}
    assert cfg.lr_scheduler_params == {"milestones": [1, 50, 80], "gamma": 0.5}
    assert cfg.callbacks[0].max_norm == 5.0 and cfg.train_batch_size == 64 and cfg.num_epochs == 100
    assert cfg.model_config.num_features is None and cfg.model_config.num_time_in_day is None  # from the dataset


def test_load_config_rejects_non_python(workdir):
    path = workdir / "cfg.yaml"
    path.write_text("a: 1")
    with pytest.raises(UserError, match="is not a Python file"):
        load_config(path)


def test_patience_option_replaces_early_stopping_and_rejects_negative(tiny_dataset, workdir, capsys):
    cfg = write_config(workdir, STID_TINY)
    assert main(["-c", str(cfg), "--patience", "-1"]) == 2
    assert "--patience -1: give 0 (no early stopping) or a positive number" in capsys.readouterr().err
    from basicts.runners.callback import EarlyStopping

    from stvfm_plugin.run import set_early_stopping

    loaded = load_config(cfg)
    set_early_stopping(loaded, 4)
    assert [c.patience for c in loaded.callbacks if isinstance(c, EarlyStopping)] == [4]
    set_early_stopping(loaded, 0)
    assert not [c for c in loaded.callbacks if isinstance(c, EarlyStopping)]


def test_readme_reliability_table_is_the_tests_cases():
    """The README's table is generated from the cases these tests run (python tests/reliability.py writes it)."""
    assert reliability.table() in reliability.README.read_text(encoding="utf-8")


def test_the_run_writes_its_status_and_why_it_stopped(tiny_dataset, workdir):
    cfg = str(write_config(workdir, STID_TINY))
    assert main(["-c", cfg, "--run-dir", "full"]) == 0
    status = json.loads((workdir / "full" / "status.json").read_text())
    assert (status["state"], status["epoch"], status["num_epochs"], status["stop_reason"], status["converged"]) == (
        "finished", 2, 2, "max epochs", True)
    assert status["best_val"] > 0 and status["metric"] == "MAE"
    assert json.loads((workdir / "full" / "run_info.json").read_text())["stop_reason"] == "max epochs"

    assert main(["-c", cfg, "--run-dir", "capped", "--set", "num_epochs=5", "--max-minutes", "0.0001"]) == 0
    status = json.loads((workdir / "capped" / "status.json").read_text())
    assert (status["state"], status["epoch"], status["stop_reason"], status["converged"]) == (
        "finished", 1, "time cap", False)
    info = json.loads((workdir / "capped" / "run_info.json").read_text())
    assert info["converged"] is False and info["epochs_run"] == 1 and info["max_minutes"] == 0.0001
    assert (workdir / "capped" / "test_metrics.json").is_file()  # a capped run is still tested, and marked

    (workdir / "broken").mkdir()
    (workdir / "broken" / "launch.json").write_text("{}")  # a run folder the leaderboard made for this run
    assert main(["-c", cfg, "--run-dir", "broken", "--set", "lr=abc"]) == 2
    status = json.loads((workdir / "broken" / "status.json").read_text())
    assert status["state"] == "failed" and status["error"] == "--set lr='abc': give a number above 0."


def test_the_status_says_running_from_the_first_training_step(tiny_dataset, workdir, monkeypatch):
    """Watchers (the leaderboard's progress line, its report) see a run under way before its first epoch ends; a
    resumed run keeps its epoch and best validation in the status while it trains again."""
    from basicts.runners import BasicTSRunner
    from basicts.utils import RunnerStatus

    seen = []
    original = BasicTSRunner._forward

    def recording(self, model, data, step, epoch=None):
        if self.status == RunnerStatus.TRAINING and not seen:  # the first training step of the run
            seen.append(json.loads((Path(self.ckpt_save_dir) / "status.json").read_text()))
        return original(self, model, data, step, epoch)

    monkeypatch.setattr(BasicTSRunner, "_forward", recording)
    cfg = str(write_config(workdir, STID_TINY))
    assert main(["-c", cfg, "--run-dir", "run", "--set", "num_epochs=1"]) == 0
    assert [(s["state"], s["epoch"], s["num_epochs"], s["best_val"]) for s in seen] == [("running", 0, 1, None)]
    finished = json.loads((workdir / "run" / "status.json").read_text())

    seen.clear()
    status = workdir / "run" / "status.json"
    status.write_text(json.dumps({**finished, "state": "interrupted"}))
    assert main(["-c", cfg, "--run-dir", "run", "--set", "num_epochs=2", "--resume"]) == 0
    assert [(s["state"], s["epoch"], s["best_val"]) for s in seen] == [("running", 1, finished["best_val"])]


def test_no_test_trains_and_selects_on_validation_without_ever_testing(tiny_dataset, workdir, capsys, monkeypatch):
    from basicts.runners import BasicTSRunner

    def no_test_pass(*args, **kwargs):
        raise AssertionError("the test split was evaluated")

    monkeypatch.setattr(BasicTSRunner, "eval", no_test_pass)
    monkeypatch.setattr(BasicTSRunner, "_test", no_test_pass)
    cfg = str(write_config(workdir, STID_TINY))
    assert main(["-c", cfg, "--run-dir", "val", "--no-test"]) == 0
    status = json.loads((workdir / "val" / "status.json").read_text())
    info = json.loads((workdir / "val" / "run_info.json").read_text())
    assert (status["state"], status["stop_reason"], info["tested"], info["epochs_run"]) == (
        "finished", "max epochs", False, 2)
    assert info["best_metrics"]["val/MAE"] == status["best_val"] > 0
    assert not (workdir / "val" / "test_metrics.json").exists() and any((workdir / "val").glob("*best_val*.pt"))
    assert "Validation only (--no-test): the test split is not evaluated" in capsys.readouterr().err
    for other in ("--save-results", "--eval=x.pt"):
        assert main(["-c", cfg, "--no-test", other]) == 2
        assert capsys.readouterr().err.strip() == (f"error: --no-test never evaluates the test split, so "
                                                   f"{other.split('=')[0]} (test predictions) cannot go with it.")


def test_a_run_folder_in_use_is_refused_and_a_dead_runs_lock_is_taken_over(tiny_dataset, workdir, capsys):
    cfg = str(write_config(workdir, STID_TINY))
    (workdir / "busy").mkdir()
    (workdir / "busy" / "run.lock").write_text(f"{os.getpid()} 2026-01-01 00:00:00\n")  # a live process holds it
    assert main(["-c", cfg, "--run-dir", "busy", "--set", "num_epochs=1"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"error: busy is in use by another run (process {os.getpid()}); wait for it to end or stop it, or use another "
        "--run-dir.")
    assert sorted(p.name for p in (workdir / "busy").iterdir()) == ["run.lock"]
    running = '{"state": "running", "epoch": 4}'  # the live run's own status: the refused run must not touch it
    (workdir / "busy" / "status.json").write_text(running)
    for extra, refusal in (([], "is in use by another run"), (["--resume"], "holds no checkpoint")):
        assert main(["-c", cfg, "--run-dir", "busy", "--set", "num_epochs=1"] + extra) == 2
        assert refusal in capsys.readouterr().err
        assert (workdir / "busy" / "status.json").read_text() == running
    (workdir / "busy" / "status.json").unlink()
    dead = subprocess.Popen(["true"])
    dead.wait()  # its id belongs to no process now
    (workdir / "busy" / "run.lock").write_text(f"{dead.pid} 2026-01-01 00:00:00\n")
    assert main(["-c", cfg, "--run-dir", "busy", "--set", "num_epochs=1"]) == 0
    assert (workdir / "busy" / "test_metrics.json").is_file() and not (workdir / "busy" / "run.lock").exists()


# ---- evaluation horizons follow the output length; a run that dies says so in its folder --------------------------

def test_a_one_step_forecast_is_scored_at_step_one_end_to_end(tiny_dataset, workdir, capsys):
    cfg = str(write_config(workdir, STID_TINY))
    assert main(["-c", cfg, "--run-dir", "short", "--set", "input_len=4", "--set", "output_len=1",
                 "--set", "num_epochs=1"]) == 0
    metrics = json.loads((workdir / "short" / "test_metrics.json").read_text())
    assert set(metrics) == {"overall", "horizon_1", "coverage_0.9", "width_0.9"} and finite_metrics(metrics)
    assert set(metrics["coverage_0.9"]) == {"overall", "horizon_1"}  # the intervals follow the horizons too
    assert json.loads((workdir / "short" / "status.json").read_text())["state"] == "finished"
    assert ("Override: eval_horizons = [1]: the protocol's 3/6/12 that a 1-step forecast reaches (--set "
            "eval_horizons=[...] to choose others)") in capsys.readouterr().err


@pytest.mark.parametrize("horizons,message", [
    ("[2,5]", "eval_horizons=[2, 5] asks for step 5, beyond output_len=3. Choose horizons of at most 3 (--set "
              "eval_horizons=[...])."),
    ("[0,2]", "eval_horizons=[0, 2]: give steps ahead as whole numbers of at least 1."),
])
def test_horizons_beyond_the_output_are_refused_before_any_folder(tiny_dataset, workdir, capsys, horizons, message):
    cfg = str(write_config(workdir, STID_TINY))
    assert main(["-c", cfg, "--set", "output_len=3", "--set", f"eval_horizons={horizons}"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == f"error: {message}"
    assert not (workdir / "checkpoints").exists()


def test_a_run_that_dies_in_its_test_is_marked_failed_with_its_error(tiny_dataset, workdir, monkeypatch):
    from stvfm_plugin.runner import PluginRunner

    def broken(self):
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(PluginRunner, "_save_metrics", broken)
    cfg = str(write_config(workdir, STID_TINY))
    with pytest.raises(RuntimeError, match="the disk is full"):
        main(["-c", cfg, "--set", "num_epochs=1"])  # a fresh run folder: no --run-dir
    (status_file,) = workdir.glob("checkpoints/**/status.json")
    status = json.loads(status_file.read_text())
    assert status["state"] == "failed" and status["error"] == "RuntimeError: the disk is full"


def test_saved_results_are_in_data_units_with_missing_readings_as_nan(tiny_dataset, workdir):
    cfg = str(write_config(workdir, STID_TINY))
    assert main(["-c", cfg, "--run-dir", "run", "--set", "num_epochs=1", "--save-results"]) == 0
    saved = {k: np.load(workdir / "run" / "test_results" / f"{k}.npy") for k in ("inputs", "prediction", "targets")}
    test = np.load("datasets/Tiny/test_data.npy")
    test = test[..., 0] if test.ndim == 3 else test  # [L, N]
    windows = saved["inputs"].shape[0]
    inputs = np.stack([test[i:i + 12] for i in range(windows)])  # [W, 12, N], data units, 0 = missing (Tiny's null)
    targets = np.stack([test[i + 12:i + 24] for i in range(windows)])
    for name, truth in (("inputs", inputs), ("targets", targets)):
        kept = saved[name].reshape(truth.shape)
        missing = np.isclose(truth, 0.0, atol=5e-5)
        assert missing.any() and np.array_equal(np.isnan(kept), missing), name  # missing readings stay apart from 0
        assert np.allclose(kept[~missing], truth[~missing], rtol=1e-4, atol=1e-3), name  # data units, not z-scores
    assert np.isfinite(saved["prediction"]).all()


def test_a_run_keeps_one_epoch_checkpoint_and_no_backups(tiny_dataset, workdir):
    cfg = str(write_config(workdir, STID_TINY))
    assert main(["-c", cfg, "--run-dir", "run", "--set", "num_epochs=4", "--patience", "0"]) == 0
    kept = sorted(p.name for p in (workdir / "run").glob("*.pt*"))
    assert kept == ["STID_4.pt", "STID_best_val_MAE.pt", "resume_state.pt"], kept  # the last epoch's (--resume), the best
    assert main(["-c", cfg, "--run-dir", "run", "--set", "num_epochs=6", "--resume"]) == 0  # resuming needs no more
    assert sorted(p.name for p in (workdir / "run").glob("*.pt*")) == ["STID_6.pt", "STID_best_val_MAE.pt",
                                                                          "resume_state.pt"]


def test_mape_is_said_meaningless_only_where_it_is():
    from stvfm_plugin.mape import mape_note

    assert mape_note(torch.linspace(10, 60, 1000)) is None  # speeds: MAPE means something
    counts = torch.cat([torch.zeros(300), torch.arange(1.0, 701.0)])
    assert mape_note(counts) == ("not meaningful on this data: 30.3 % of the scored test targets are zero or near it "
                                 "(within 0.01 x the median non-zero |target|), where the percentage error divides by "
                                 "almost nothing; compare MAE and RMSE")
    mostly_zeros = torch.cat([torch.zeros(600), torch.arange(1.0, 401.0)])  # the median is 0: the share stays true
    assert mape_note(mostly_zeros).startswith("not meaningful on this data: 60.2 % of the scored test targets are zero")
    signed = torch.linspace(-1, 1, 1001)
    assert mape_note(signed).startswith("not meaningful on this data: 50.0 % of the scored test targets are negative")


def test_the_report_carries_the_mape_note(tiny_dataset, workdir):
    from stvfm_plugin.leaderboard.markdown import markdown
    from stvfm_plugin.leaderboard.rows import ModelRow, SeedRun

    note = "not meaningful on this data: 30.2 % of the scored test targets are zero or near it"
    metrics = {g: {"MAE": 1.0, "RMSE": 2.0, "MAPE": 0.5} for g in ("overall", "horizon_3", "horizon_6", "horizon_12")}
    row = ModelRow("STID", [SeedRun(1, "finished", metrics, {"mape_note": note})])
    settings = {"budget": {"dataset": "Tiny", "seeds": [1], "models": ["STID"], "epochs": 1, "patience": 0}}
    assert f"MAPE is {note}." in markdown(settings, [row])
    plain = ModelRow("STID", [SeedRun(1, "finished", metrics, {})])
    assert "MAPE is" not in markdown(settings, [plain])


NAN_SENSOR = """
from dataclasses import dataclass

import torch
from basicts.configs import BasicTSForecastingConfig, BasicTSModelConfig
from torch import nn

from stvfm_plugin.protocols import traffic_protocol


@dataclass
class NanSensorConfig(BasicTSModelConfig):
    input_len: int = 12
    output_len: int = 12


class NanSensor(nn.Module):
    '''A linear forecaster whose sensor 0 is NaN outside training.'''

    def __init__(self, config: NanSensorConfig) -> None:
        super().__init__()
        self.linear = nn.Linear(config.input_len, config.output_len)

    def forward(self, inputs, inputs_timestamps=None):
        x = inputs[..., 0] if inputs.dim() == 4 else inputs  # [B, T, N]
        y = self.linear(x.transpose(1, 2)).transpose(1, 2)  # [B, T_out, N]
        if not self.training:
            y = y.clone()
            y[..., 0] = float("nan")
        return y


CFG = BasicTSForecastingConfig(model=NanSensor, model_config=NanSensorConfig(), **traffic_protocol("Tiny"),
                               num_epochs=2, batch_size=64, optimizer_params={"lr": 0.002})
"""


def test_nan_for_one_sensor_is_never_a_finite_result_and_is_not_ranked(tiny_dataset, workdir):
    from stvfm_plugin.leaderboard.collect import collect
    from stvfm_plugin.leaderboard.summaries import collect_summaries, export_summaries

    cfg = str(write_config(workdir, NAN_SENSOR))
    assert main(["-c", cfg, "--run-dir", "lb/NanSensor/seed-1", "--seed", "1"]) == 0
    run = workdir / "lb" / "NanSensor" / "seed-1"
    metrics = json.loads((run / "test_metrics.json").read_text())
    assert all(np.isnan(v) for group in metrics.values() for v in group.values())  # not the other sensors' MAE
    windows = np.load("datasets/Tiny/test_data.npy").shape[0] - 23
    test = np.load("datasets/Tiny/test_data.npy")
    test = test[..., 0] if test.ndim == 3 else test
    scored_sensor_0 = sum(int((~np.isclose(test[i + 12:i + 24, 0], 0.0, atol=5e-5)).sum()) for i in range(windows))
    assert json.loads((run / "run_info.json").read_text())["nonfinite_predictions"] == scored_sensor_0
    (workdir / "lb" / "leaderboard.json").write_text(json.dumps({"budget": {
        "dataset": "Tiny", "models": ["NanSensor"], "seeds": [1], "epochs": 2, "patience": 0, "kind": "equal epochs"},
        "device": "cpu", "software": {}, "dataset_meta": {}}))
    settings, rows = collect(workdir / "lb")
    assert rows[0].runs[0].state is Outcome.UNSCORABLE
    assert rows[0].runs[0].label == f"non-finite predictions ({scored_sensor_0:,} scored readings)"
    assert rows[0].states() == rows[0].runs[0].label  # what the report's Status column says
    export_summaries(settings, rows, workdir / "report")
    _, ranked = collect_summaries(workdir / "report")
    assert ranked[0].rank is None and not ranked[0].finished  # the leaderboard does not rank it


def test_a_diverging_run_stops_at_once_says_why_and_is_marked(tiny_dataset, workdir, capsys):
    (case,) = [c for c in reliability.RUN if "lr=1e9" in c.args]
    cfg = str(write_config(workdir, STID_TINY))
    assert main(["-c", cfg, "--set", "num_epochs=3", *case.args]) == 2
    err = capsys.readouterr().err
    line = case.message
    assert err.strip().splitlines()[-1] == f"error: {line}" and "Traceback" not in err
    status = json.loads((workdir / "r" / "status.json").read_text())
    assert (status["state"], status["epoch"], status["error"]) == ("diverged", 1, line)
    assert not (workdir / "r" / "test_metrics.json").exists()  # nothing scored as a result


def test_the_leaderboard_ranks_the_finite_model_and_shows_the_diverged_one(tiny_dataset, workdir):
    configs = workdir / "cfgs"
    configs.mkdir()
    write_config(configs, STID_TINY, "STID_Tiny.py")
    shutil.copy(CONFIGS / "DLinear.py", configs / "DLinear.py")
    proc = subprocess.run([python(), "-m", "stvfm_plugin.leaderboard", "run", "--dataset", "Tiny", "--models", "STID",
                           "DLinear", "--set", "STID:lr=1e9", "--budget", "equal-epochs", "--epochs", "1",
                           "--config-dir", str(configs), "--threads", "1"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    md = (workdir / "leaderboard" / "Tiny" / "report" / "leaderboard.md").read_text()
    assert "| 1 | DLinear |" in md and "| — | STID |" in md and "| diverged: training diverged in epoch 1" in md
    assert "STID seed 1: DIVERGED (exit 2): training diverged in epoch 1" in proc.stdout
    assert "[Tiny] done: 1 finished, 1 diverged (STID/1), 0 failed" in proc.stdout


def test_one_batch_epochs_are_counted_right(tiny_dataset, workdir):
    cfg = str(write_config(workdir, STID_TINY))
    assert main(["-c", cfg, "--run-dir", "r", "--set", "batch_size=100000", "--set", "num_epochs=2"]) == 0
    status = json.loads((workdir / "r" / "status.json").read_text())
    assert (status["state"], status["epoch"]) == ("finished", 2)
    assert json.loads((workdir / "r" / "run_info.json").read_text())["epochs_run"] == 2


def test_a_damaged_meta_json_gets_one_line(tiny_dataset, workdir, capsys):
    (case,) = [c for c in reliability.RUN if "meta.json" in c.setup]
    (workdir / "datasets" / "Tiny" / "meta.json").write_text('{"name": "Tiny", ')
    assert main(["-c", str(write_config(workdir, STID_TINY)), *case.args]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == f"error: {case.message}"
    assert "Traceback" not in err and not (workdir / "checkpoints").exists()
    assert (workdir / "datasets" / "Tiny" / "meta.json").read_text() == '{"name": "Tiny", '  # the dataset as it was


def nan_checkpoint(trained: Path, out: Path) -> Path:
    """`trained` with every floating weight set to NaN (a checkpoint of a diverged model)."""
    saved = torch.load(trained, map_location="cpu", weights_only=False)
    saved["model_state_dict"] = {k: v.fill_(float("nan")) if torch.is_tensor(v) and v.is_floating_point() else v
                                 for k, v in saved["model_state_dict"].items()}
    torch.save(saved, out)
    return out


@pytest.mark.parametrize("body", ["STID", "STVFM"])
def test_eval_of_a_nan_checkpoint_is_not_a_result(tiny_dataset, workdir, capsys, body):
    from test_stvfm import STVFM_TINY

    case = next(c for c in (reliability.RUN if body == "STID" else reliability.STVFM_RUN) if "nan-weights.pt" in c.args)
    cfg = str(write_config(workdir, STID_TINY if body == "STID" else STVFM_TINY))
    assert main(["-c", cfg, "--run-dir", "run", "--set", "num_epochs=1"]) == 0
    nan_checkpoint(next((workdir / "run").glob("*_best_val_MAE.pt")), workdir / case.args[1])
    capsys.readouterr()
    assert main(["-c", cfg, *case.args]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1].startswith(f"error: {case.message.removesuffix('...')}") and "Traceback" not in err
    (folder,) = workdir.glob("eval-*")
    metrics = json.loads((folder / "test_metrics.json").read_text())
    assert all(np.isnan(v) for group in metrics.values() for v in group.values())  # never a zero error
    assert json.loads((folder / "run_info.json").read_text())["nonfinite_predictions"] > 0


def test_a_dataset_with_readings_near_1e30_is_refused_before_any_folder(tiny_dataset, workdir, capsys):
    (case,) = [c for c in reliability.RUN if c.message == reliability.HUGE_READINGS]
    folder = workdir / "datasets" / "Tiny"
    for split in ("train", "val", "test"):  # written by other means than `prepare`, which refuses them
        data = np.load(folder / f"{split}_data.npy")
        np.save(folder / f"{split}_data.npy", (data / np.abs(data).max() * 1e30).astype(np.float32))
    assert main(["-c", str(write_config(workdir, STID_TINY)), *case.args]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == f"error: {case.message}" and "Traceback" not in err
    assert not (workdir / "checkpoints").exists()


def test_a_split_without_a_scored_reading_is_refused_before_any_folder(tiny_dataset, workdir, capsys):
    (case,) = [c for c in reliability.RUN if "validation readings all set to 0" in c.setup]
    val = workdir / "datasets" / "Tiny" / "val_data.npy"
    np.save(val, np.zeros_like(np.load(val)))  # written by other means than `prepare`, which refuses it
    assert main(["-c", str(write_config(workdir, STID_TINY)), *case.args]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == f"error: {case.message}" and "Traceback" not in err
    assert not (workdir / "checkpoints").exists()


# ---- a run knows what it was trained on ------------------------------------------------------------------

def _files(folder: Path) -> dict:
    return {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file() and p.name != "run.lock"}


@pytest.fixture
def trained_run(tiny_dataset, workdir) -> Path:
    assert main(["-c", str(write_config(workdir, STID_TINY)), "--run-dir", "r", "--set", "lr=0.002"]) == 0
    record = json.loads((workdir / "r" / "run_options.json").read_text())
    assert record["trained_on"]["name"] == "Tiny" and len(record["trained_on"]["files"]["train_data.npy"]) == 64
    return workdir / "r"


@pytest.mark.parametrize("settings, message", [
    (["--set", "lr=1e9"], "--set lr=0.002 there, lr=1000000000.0 here"),
    (["--set", "lr=0.002", "--seed", "7"], "seed"),
    (["--set", "lr=0.002", "--dataset", "Other"], "dataset Tiny there, Other here"),
])
def test_resume_with_other_settings_is_refused_and_changes_no_file(trained_run, workdir, capsys, settings, message):
    from stvfm_plugin.data.synth import synth_dataset

    synth_dataset(workdir / "datasets", "Other", SynthOptions(num_nodes=12, num_steps=288 * 4, seed=2))
    before = _files(trained_run)
    cfg = workdir / "cfg.py"
    if "--seed" in settings:  # the record holds the seed a run was given
        shutil.rmtree(trained_run)
        assert main(["-c", str(cfg), "--run-dir", "r", "--set", "lr=0.002", "--seed", "3"]) == 0
        before = _files(trained_run)
    assert main(["-c", str(cfg), "--run-dir", "r", "--resume", *settings]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: --resume r: this call asks for other settings than the run was trained with (")
    assert message in err and _files(trained_run) == before
    assert main(["-c", str(cfg), "--run-dir", "r", "--resume", "--set", "lr=0.002", "--set", "num_epochs=3",
                 *(["--seed", "3"] if "--seed" in settings else [])]) == 0  # more epochs: a resume honours that
    assert json.loads((trained_run / "run_info.json").read_text())["epochs_run"] == 3


def test_a_dataset_prepared_again_is_refused_by_forecast_eval_and_resume(trained_run, workdir, capsys):
    from stvfm_plugin.forecast import main as forecast_main

    train = np.load("datasets/Tiny/train_data.npy")
    np.save("datasets/Tiny/train_data.npy", train * 1.1)  # the same shape, other data
    before = _files(trained_run)
    why = "dataset Tiny was prepared again since this run was trained (train_data.npy changed)"
    assert forecast_main([str(trained_run)]) == 2
    assert why in capsys.readouterr().err
    assert main(["-c", "cfg.py", "--eval", str(trained_run / "STID_best_val_MAE.pt")]) == 2
    assert f"error: --eval {trained_run / 'STID_best_val_MAE.pt'}: {why}" in capsys.readouterr().err
    assert main(["-c", "cfg.py", "--run-dir", "r", "--resume", "--set", "lr=0.002"]) == 2
    assert f"error: --resume r: {why}" in capsys.readouterr().err
    assert _files(trained_run) == before and not list(trained_run.glob("eval-*"))
    np.save("datasets/Tiny/train_data.npy", train)  # the data it was trained on: accepted again
    assert forecast_main([str(trained_run)]) == 0


# ---- history: a week in ---------------------------------------------------------------------------------

@pytest.mark.parametrize("step, expected", [(60, 168), (15, 672), (1440, 7)])
def test_a_week_of_history_is_a_week_of_steps(step, expected):
    from stvfm_plugin.protocols import history_input_len

    assert history_input_len("week", step) == expected and history_input_len("recent", step) is None


@pytest.mark.parametrize("step, week", [(60, 168), (15, 672), (1440, 7)])
def test_weeks_residual_windows_span_three_weeks_of_which_the_model_reads_the_last(step, week):
    from stvfm_plugin.protocols import history_input_len, model_input_len, residual_lag, residual_weeks

    assert residual_weeks("weeks-residual") == 3 and residual_weeks("week-residual") is None
    assert history_input_len("weeks-residual", step) == 3 * week and model_input_len("weeks-residual", step) == week
    assert residual_lag("weeks-residual", step, 1) == week
    assert all(model_input_len(h, step) is None for h in ("recent", "week", "week-residual"))


@pytest.mark.parametrize("level", [None, "mean", "last"])
def test_the_weeks_residual_base_is_the_median_of_the_copies_less_the_level_of_what_the_model_reads(level):
    from stvfm_plugin.protocols import residual_base

    torch.manual_seed(0)
    inputs = torch.randn(2, 12, 3, 1)  # [B, T, N, C]: three "weeks" of 4 steps
    like = torch.zeros(2, 2, 3, 1)
    copies = torch.stack([inputs[:, 12 - 4 * k:12 - 4 * k + 2] for k in (1, 2, 3)])  # [3, B, 2, N, C]
    seen = inputs[:, -4:]  # the last week: what the model reads
    level_of = {None: 0, "mean": seen.mean(dim=1, keepdim=True), "last": seen[:, -1:]}[level]
    expected = copies.median(dim=0).values - level_of
    assert torch.allclose(residual_base(inputs, 4, like, level, weeks=3, model_len=4), expected)
    assert not torch.allclose(copies.median(dim=0).values, copies[0])  # the median is not the last week's copy here


@pytest.mark.parametrize("weeks", [1, 3])
def test_a_missing_reading_is_no_copy_in_the_residual_base(weeks):
    """As in the naive references: the median of the copies that were read (of two, their mean), else the series' last
    reading of the window; with every reading there, exactly the base without a mask."""
    from stvfm_plugin.protocols import residual_base

    torch.manual_seed(0)
    inputs = torch.randn(2, 12, 3, 2)  # [B, T, N, C]: three "weeks" of 4 steps, two channels
    like = torch.zeros(2, 2, 3)  # the forecast of channel 0
    observed = torch.ones_like(inputs, dtype=torch.bool)
    assert torch.equal(residual_base(inputs, 4, like, weeks=weeks, observed=observed), residual_base(inputs, 4, like,
                                                                                                      weeks=weeks))
    x = inputs[..., 0]  # [B, T, N]
    observed[0, 8, 0, 0] = False  # series 0, forecast step 1: its copy one week back is missing
    observed[0, 4, 0, 0] = observed[0, 0, 0, 0] = weeks == 1  # under 3 weeks: all three missing
    observed[1, 9, 1, 0] = observed[1, 5, 1, 0] = False  # window 1, series 1, step 2: weeks 1 and 2 missing
    observed[0, 11, 2, 0] = observed[0, 10, 2, 0] = False  # series 2's last readings: not a copy of the forecast
    observed[0, 8, 0, 1] = False  # channel 1: not forecast
    base = residual_base(inputs, 4, like, weeks=weeks, observed=observed)
    expected = residual_base(inputs, 4, like, weeks=weeks)
    expected[0, 0, 0] = x[0, 11, 0]  # no copy read: the last reading
    expected[1, 1, 1] = x[1, 1, 1] if weeks == 3 else x[1, 11, 1]  # the one copy read (week 3), else the last reading
    assert torch.equal(base, expected)
    observed[0, 4, 0, 0] = observed[0, 0, 0, 0] = True  # under 3 weeks, two copies read: their mean
    if weeks == 3:
        assert torch.allclose(residual_base(inputs, 4, like, weeks=3, observed=observed)[0, 0, 0],
                              (x[0, 4, 0] + x[0, 0, 0]) / 2)
    observed[0, :, 0, 0] = False  # nothing of the series read: the window's last value (the scaler's mean there)
    assert residual_base(inputs, 4, like, weeks=weeks, observed=observed)[0, 0, 0] == x[0, 11, 0]


@pytest.mark.parametrize("step", [10080, 11])
def test_a_week_that_is_no_whole_number_of_steps_is_refused(step):
    from stvfm_plugin.protocols import history_input_len

    with pytest.raises(UserError, match="--history week: a week is not a whole number"):
        history_input_len("week", step)


def test_history_week_gives_every_model_and_reference_a_week_in(workdir, capsys):
    from stvfm_plugin.data.synth import synth_dataset
    from stvfm_plugin.references import main as reference_main

    synth_dataset(workdir / "datasets", "Hourly", SynthOptions(num_nodes=6, num_steps=24 * 7 * 6, step_minutes=60,
                                                              seed=1))
    cfg = CONFIGS / "STID.py"
    assert main(["-c", str(cfg), "--dataset", "Hourly", "--history", "week", "--run-dir", "w", "--set",
                 "num_epochs=1", "--threads", "1"]) == 0
    assert json.loads((workdir / "w" / "run_info.json").read_text())["input_len"] == 168
    assert json.loads((workdir / "w" / "run_options.json").read_text())["history"] == "week"
    assert "Override (--history week): input_len" in capsys.readouterr().err + "".join(
        p.read_text() for p in (workdir / "w").glob("training_log_*.log"))
    windows = np.load("datasets/Hourly/test_data.npy").shape[0] - 168 - 12 + 1
    assert reference_main(["--dataset", "Hourly", "--method", "SeasonalWeek", "--run-dir", "ref", "--history",
                           "week"]) == 0
    assert json.loads((workdir / "ref" / "run_info.json").read_text())["test_windows"] == windows
    assert main(["-c", str(cfg), "--dataset", "Hourly", "--run-dir", "w", "--resume"]) == 2
    assert "--history week there, recent here" in capsys.readouterr().err
    assert main(["-c", str(cfg), "--dataset", "Hourly", "--history", "week", "--set", "input_len=24"]) == 2
    assert "--history week sets input_len (168 steps); drop --set input_len" in capsys.readouterr().err



@pytest.mark.parametrize("input_len, expected", [(12, (4, 2)), (48, (4, 2)), (96, (8, 4)), (168, (16, 8)),
                                                 (336, (16, 8)), (720, (16, 8))])
def test_patches_follow_the_input_from_the_traffic_protocols_to_the_papers(input_len, expected):
    from stvfm_plugin.protocols import patches_for

    assert patches_for(input_len) == expected


def test_a_week_in_gives_the_patch_models_the_papers_patches_unless_the_user_chose_them(workdir, capsys):
    from stvfm_plugin.data.synth import synth_dataset

    synth_dataset(workdir / "datasets", "Hourly", SynthOptions(num_nodes=4, num_steps=24 * 7 * 6, step_minutes=60,
                                                              seed=1))
    assert main(["-c", str(CONFIGS / "PatchTST.py"), "--dataset", "Hourly", "--history", "week", "--run-dir", "p",
                 "--set", "num_epochs=1", "--no-test", "--threads", "1"]) == 0
    model_config = json.loads((workdir / "p" / "cfg.json").read_text())["model_config"]
    assert (model_config["patch_len"], model_config["patch_stride"]) == (16, 8)
    logged = capsys.readouterr().err + "".join(p.read_text() for p in (workdir / "p").glob("training_log_*.log"))
    assert ("Override: model_config.patch_len = 16, model_config.patch_stride = 8: the patches follow the 168 steps in "
            "(21 patches with the end padding") in logged
    from stvfm_plugin.run import describe_run
    from stvfm_plugin.run_options import RunOptions

    spec = describe_run(RunOptions(config=CONFIGS / "PatchTST.py", dataset="Hourly", history="week",
                                   overrides=[("model_config.patch_len", 8)]), logging.getLogger("t"))
    model_config = spec.cfg.model_config
    assert (model_config.patch_len, model_config.patch_stride) == (8, 2)  # the user's patch, the config's stride


def test_a_configs_own_patching_is_kept_and_recent_history_changes_nothing():
    from stvfm_plugin.baselines import baseline_config
    from stvfm_plugin.protocols import fit_patches

    cfg = baseline_config("PatchTST")
    cfg.model_config.patch_len, cfg.model_config.patch_stride = 6, 3  # not the rule's for 12 steps: the config's choice
    cfg.input_len = 168
    assert fit_patches(cfg, 12, set()) is None and (cfg.model_config.patch_len, cfg.model_config.patch_stride) == (6, 3)
    cfg = baseline_config("GPT4TS")
    assert fit_patches(cfg, 12, set()) is None  # the same input length: nothing to follow
    cfg.input_len = 168
    assert "patch_len = 16" in fit_patches(cfg, 12, set())
    assert fit_patches(baseline_config("STID"), 12, set()) is None  # no patches

def test_the_mape_note_samples_every_node_not_an_aliased_few():
    from stvfm_plugin.mape import TARGET_SAMPLE, sample_targets

    nodes = torch.arange(32 * 12 * 256) % 256  # [B, T, N] flattened: the node of each scored target
    picked = sample_targets(nodes.float(), batch=3)
    assert len(picked) == TARGET_SAMPLE and len(torch.unique(picked)) == 256  # a stride of 24 saw 32 nodes only
    assert torch.equal(picked, sample_targets(nodes.float(), batch=3))  # the same sample every time


# ---- history: a week in, forecasting the residual of last week's copy ----------------------------------------------

@pytest.mark.parametrize("t_in, lag, t_out, channels", [(6, 4, 2, None), (8, 4, 4, None), (168, 168, 12, 2)])
def test_a_week_residual_model_learns_the_residual_of_the_copy_and_forecasts_the_copy_plus_its_output(
        t_in, lag, t_out, channels):
    from basicts.utils import RunnerStatus
    from stvfm_plugin.basicts_compat.runner import BasicTS110Runner
    from stvfm_plugin.protocols import RESIDUAL_LAG

    seen = {}

    class Half(torch.nn.Module):
        def forward(self, inputs, targets=None, train=False):
            seen["targets"] = targets.clone()
            return torch.full_like(targets, 0.5)

    runner = BasicTS110Runner.__new__(BasicTS110Runner)  # only what `_forward` reads
    runner.cfg, runner.forward_params, runner.to_running_device = {RESIDUAL_LAG: lag}, ["targets", "train"], lambda t: t
    shape = (3, t_in, 5) + ((channels,) if channels else ())
    inputs = torch.randn(shape)
    targets = torch.randn((3, t_out) + shape[2:])
    copy = inputs[:, t_in - lag:t_in - lag + t_out]  # [B, T_out, N(, C)]: the same steps one lag earlier
    runner.model = Half()
    for status in (RunnerStatus.TRAINING, RunnerStatus.VALIDATING):
        runner.status = status
        out = runner._forward(runner.model, {"inputs": inputs, "targets": targets}, 0)
        assert torch.allclose(out["prediction"], copy + 0.5) and torch.equal(out["targets"], targets)
    runner.status = RunnerStatus.TRAINING
    runner._forward(runner.model, {"inputs": inputs, "targets": targets}, 0)
    assert torch.allclose(seen["targets"], targets - copy)  # teacher forcing / a model's own likelihood: the residual

    class HalfOnABase(torch.nn.Module):  # a model that asks what its output is added to (ST-VFM's flow loss)
        def forward(self, inputs, targets=None, train=False, targets_base=None):
            seen["base"] = targets_base.clone()
            return torch.full_like(targets, 0.5)

    runner.model, runner.forward_params = HalfOnABase(), ["targets", "train", "targets_base"]
    data = {"inputs": inputs, "targets": targets}
    out = runner._forward(runner.model, data, 0)
    assert torch.equal(seen["base"], copy) and "targets_base" not in out and "targets_base" not in data


def test_week_residual_refuses_a_forecast_beyond_the_week_it_copies():
    from stvfm_plugin.protocols import residual_lag

    assert residual_lag("week-residual", 60, 168) == 168 and residual_lag("week", 60, 12) is None
    with pytest.raises(UserError, match="--history week-residual: a 169-step forecast reaches beyond the week it copies "
                                        r"\(168 steps\); forecast at most 168 steps, or use --history week."):
        residual_lag("week-residual", 60, 169)


NOUGHT = """
from dataclasses import dataclass

import torch
from basicts.configs import BasicTSForecastingConfig, BasicTSModelConfig
from torch import nn

from stvfm_plugin.protocols import traffic_protocol


@dataclass
class NoughtConfig(BasicTSModelConfig):
    input_len: int = 12
    output_len: int = 12


class Nought(nn.Module):
    '''Forecasts 0 (in the scaler's units) whatever it trains on: its one weight gets no gradient.'''

    def __init__(self, config: NoughtConfig) -> None:
        super().__init__()
        self.output_len = config.output_len
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, inputs, inputs_timestamps=None):
        x = inputs[..., 0] if inputs.dim() == 4 else inputs  # [B, T, N]
        return x[:, :self.output_len] * 0.0 * self.weight  # [B, T_out, N]


CFG = BasicTSForecastingConfig(model=Nought, model_config=NoughtConfig(), **traffic_protocol(),
                               num_epochs=1, batch_size=64, optimizer_params={"lr": 0.002})
"""


#: A model that normalises each window and adds the window's mean back (RevIN, as PatchTST, iTransformer and GPT4TS),
#: and learns nothing: it forecasts its window's mean
NOUGHT_REVIN = NOUGHT.replace("    output_len: int = 12\n", "    output_len: int = 12\n    use_revin: bool = True\n").replace(
    "return x[:, :self.output_len] * 0.0 * self.weight  # [B, T_out, N]",
    "return x.mean(dim=1, keepdim=True).expand(-1, self.output_len, -1) + 0.0 * self.weight  # [B, T_out, N]")


def test_the_baselines_that_add_a_level_of_their_window_back_are_the_revin_ones_and_nhits():
    """`--history week-residual` takes that level off the copy: the window's mean for the models with `use_revin` on,
    the last reading for N-HiTS's naive level (and RevIN's `subtract_last`)."""
    from types import SimpleNamespace

    from stvfm_plugin.baselines import BUILDERS
    from stvfm_plugin.protocols import own_level, residual_base

    levels = {m: own_level(build()[1]) for m, build in BUILDERS.items()}
    assert {m: v for m, v in levels.items() if v} == {"PatchTST": "mean", "iTransformer": "mean", "GPT4TS": "mean",
                                                      "NHiTS": "last"}
    assert own_level(SimpleNamespace(use_revin=True, subtract_last=True)) == "last"
    assert own_level(SimpleNamespace(use_revin=False, naive_level=False)) is None
    inputs = torch.arange(2 * 6 * 3, dtype=torch.float32).reshape(2, 6, 3)  # [B, T, N]
    like = torch.zeros(2, 2, 3)
    copy = inputs[:, 2:4]  # lag 4: the same steps 4 earlier
    assert torch.equal(residual_base(inputs, 4, like), copy)
    assert torch.allclose(residual_base(inputs, 4, like, "mean"), copy - inputs.mean(dim=1, keepdim=True))
    assert torch.equal(residual_base(inputs, 4, like, "last"), copy - inputs[:, -1:])
    with pytest.raises(UserError, match="residual level 'median': choose one of mean, last."):
        residual_base(inputs, 4, like, "median")


@pytest.mark.parametrize("history, reference, weeks", [("week-residual", "SeasonalWeek", 1),
                                                       ("weeks-residual", "SeasonalMedian", 3)])
@pytest.mark.parametrize("revin, missing", [(False, 0.0), (True, 0.0), (False, 0.05)], ids=["plain", "revin", "missing"])
def test_a_model_that_learns_nothing_forecasts_its_base_under_a_residual_history(workdir, revin, missing, history,
                                                                                 reference, weeks):
    """`week-residual`: the copy of last week; `weeks-residual`: the median of the copies one to three weeks earlier,
    from windows of three weeks of which the model reads the last. Also a model that adds its window's mean back
    (RevIN): its output is added to the base less that mean (the mean of the week it reads: over the whole window the
    forecast would not be the base). With readings missing, a missing reading is no copy, in the run as in the
    reference (the median of the copies read, else the last reading)."""
    from stvfm_plugin.data.synth import synth_dataset
    from stvfm_plugin.forecaster import Forecaster
    from stvfm_plugin.references import main as reference_main

    week = 168
    synth_dataset(workdir / "datasets", "Hourly", SynthOptions(num_nodes=5, num_steps=24 * 7 * (6 if weeks == 1 else 16),
                                                              step_minutes=60, seed=3, missing_share=missing))
    assert "use_revin" in NOUGHT_REVIN and "x.mean(dim=1" in NOUGHT_REVIN
    cfg = str(write_config(workdir, NOUGHT_REVIN if revin else NOUGHT))
    assert main(["-c", cfg, "--dataset", "Hourly", "--history", history, "--run-dir", "r", "--threads", "1",
                 "--save-results"]) == 0
    assert json.loads((workdir / "r" / "run_options.json").read_text())["history"] == history
    run_cfg = json.loads((workdir / "r" / "cfg.json").read_text())
    assert run_cfg["residual_lag"] == week and run_cfg.get("residual_level") == ("mean" if revin else None)
    assert run_cfg["dataset_params"]["input_len"] == weeks * week and run_cfg["model_config"]["input_len"] == week
    assert run_cfg.get("residual_weeks") == (weeks if weeks > 1 else None)
    assert run_cfg.get("model_input_len") == (week if weeks > 1 else None)
    inputs, prediction = (np.load(workdir / "r" / "test_results" / f"{k}.npy") for k in ("inputs", "prediction"))
    assert inputs.shape[1] == week  # what the model read
    if weeks == 1:  # [B, 12, N]: the same hours one week earlier, where they were read
        read = ~np.isnan(inputs[:, :12])
        assert np.allclose(prediction[read], inputs[:, :12][read], atol=1e-3) and read.all() == (missing == 0)
    assert reference_main(["--dataset", "Hourly", "--method", reference, "--run-dir", "base", "--history",
                           history]) == 0
    scored = [json.loads((workdir / d / "test_metrics.json").read_text())["overall"]["MAE"] for d in ("r", "base")]
    assert scored[0] == pytest.approx(scored[1], rel=1e-4)
    forecaster = Forecaster.load(workdir / "r")
    readings, _ = forecaster.latest()  # the forecast command: the base too
    assert readings.shape[0] == weeks * week
    readings = np.where(readings == forecaster.dataset.null_val, np.nan, readings)  # [T, N]
    copies = np.stack([readings[len(readings) - k * week:][:12] for k in range(1, weeks + 1)])  # [weeks, 12, N]
    last = np.array([series[~np.isnan(series)][-1] for series in readings.T])  # [N]: each series' last reading
    none_read = np.isnan(copies).all(axis=0)  # [12, N]
    base = np.where(none_read, last, np.nanmedian(np.where(none_read, 0.0, copies), axis=0))  # [12, N]
    assert missing == 0 or np.isnan(readings).any()
    assert np.allclose(forecaster.forecast()["forecast"].to_numpy().reshape(12, 5), base, atol=1e-3)
    # under `week` the same model forecasts the training mean: the residual is what makes it the copy
    assert main(["-c", cfg, "--dataset", "Hourly", "--history", "week", "--run-dir", "w", "--threads", "1"]) == 0
    plain = json.loads((workdir / "w" / "test_metrics.json").read_text())["overall"]["MAE"]
    assert plain > 1.5 * scored[0]
