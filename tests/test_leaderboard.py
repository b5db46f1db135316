"""The leaderboard: training with resume and failure records, and the report built from run folders."""
from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from stvfm_plugin.errors import UserError
from stvfm_plugin.leaderboard.cli import _overrides, main
from stvfm_plugin.leaderboard.collect import collect
from stvfm_plugin.leaderboard.markdown import ablations, verdict
from stvfm_plugin.leaderboard.report import write_report
from stvfm_plugin.leaderboard.rows import ModelRow, SeedRun, display_order
from stvfm_plugin.leaderboard.summaries import collect_summaries, ended_summaries, export_summaries
from stvfm_plugin.leaderboard.tables import tune_markdown
from stvfm_plugin.leaderboard import runs
from stvfm_plugin.leaderboard.runs import LOCK_FILE, Budget, exclusive_use, run_leaderboard
from stvfm_plugin.records import Outcome

import reliability
from conftest import REPO, STID_TINY, python, write_config


# ---- report from fixture run folders ----------------------------------------------------------
def fake_run(out: Path, model: str, seed: int, mae: float, state: str = "finished", error: str = "",
             seconds=(10.0, 12.0), trainable: int = 100, total: int = 1000, stop: str = "early stopping",
             max_minutes: float = 30) -> None:
    folder = out / model.replace(":", "@") / f"seed-{seed}"
    folder.mkdir(parents=True)
    (folder / "status.json").write_text(json.dumps({"state": state, "error": error, "stop_reason": stop,
                                                    "converged": stop != "time cap"}))
    if state != "finished":
        return
    groups = {"overall": 1.0, "horizon_3": 0.8, "horizon_6": 1.0, "horizon_12": 1.3}
    (folder / "test_metrics.json").write_text(json.dumps(
        {g: {"MAE": mae * f, "RMSE": 2 * mae * f, "MAPE": 0.01 * mae * f} for g, f in groups.items()}))
    (folder / "run_info.json").write_text(json.dumps({
        "epochs_run": len(seconds), "seconds_per_epoch": list(seconds), "cpu_threads": [1], "stop_reason": stop,
        "max_minutes": max_minutes,
        "trainable_params": trainable, "total_params": total, "batch_size": 64, "inference_ms_per_batch": 5.0 + seed,
        "peak_memory_mb": {"kind": "process_peak_rss", "mb": 500.0 + seed}, "best_metrics": {"val/MAE": mae - 0.5},
        "build_report": [f"{model} backbone weights: file w.safetensors"] if model == "Big" else [],
        "backbone_report": [f"{model} backbone weights: file w.safetensors"] if model == "Big" else []}))
    (folder / "cfg.json").write_text(json.dumps({
        "dataset_name": "Fix", "null_val": 0.0, "scaler": {"name": "ZScoreScalerFixed"}, "norm_each_channel": False,
        "rescale": True, "metrics": ["MAE", "RMSE", "MAPE"], "eval_horizons": [3, 6, 12],
        "dataset_params": {"input_len": 12, "output_len": 12}, "num_epochs": 3}))


@pytest.fixture
def fixture_leaderboard(tmp_path) -> Path:
    out = tmp_path / "lb"
    out.mkdir()
    budget = {"dataset": "Fix", "models": ["Small", "Big", "Broken", "Slow", "Big:vfm_layers=0"], "seeds": [1, 2],
              "epochs": 3,
              "patience": 2, "max_minutes": 30, "kind": "convergence", "overrides": {"Big": ["model_config.vfm_layers=2"]},
              "config_dir": "cfg"}
    (out / "leaderboard.json").write_text(json.dumps({"budget": budget, "software": {"torch": "x", "cpu_threads": "7"},
                                                      "device": "cpu", "dataset_meta": {}}))
    fake_run(out, "Small", 1, 3.4)  # within Big's std: the close-ranks note
    fake_run(out, "Small", 2, 3.6)
    fake_run(out, "Big", 1, 3.0, trainable=10, total=2_000_000)
    fake_run(out, "Big", 2, 3.5, trainable=10, total=2_000_000)
    fake_run(out, "Broken", 1, 0, state="failed", error="CUDA out of memory")
    fake_run(out, "Slow", 1, 1.0, stop="time cap")  # the best MAE, but cut by the cap: not ranked
    fake_run(out, "Slow", 2, 1.1, stop="time cap")
    fake_run(out, "Big:vfm_layers=0", 1, 3.4)  # an ablation row, within the std of its full model
    fake_run(out, "Big:vfm_layers=0", 2, 3.6)
    return out


ABSOLUTE_PATH = re.compile(r"(?<![\w.])/(?:tmp|work|home|root|usr|var|mnt|opt|Users)/")


def test_report_rebuilds_byte_for_byte_from_its_summaries_without_paths(fixture_leaderboard, tmp_path):
    """The committed-report workflow: summaries beside the report; a fresh clone rebuilds it from them alone."""
    big = fixture_leaderboard / "Big" / "seed-1" / "run_info.json"
    info = json.loads(big.read_text())
    info["build_report"] = info["backbone_report"] = [
        "ST-VFM backbone weights: file /work/shared/weights/dinov2_vits14.safetensors (sha256 ab12)"]
    big.write_text(json.dumps(info))
    report = tmp_path / "committed"
    first = {p.name: p.read_bytes() for p in write_report(fixture_leaderboard, report)}
    shutil.rmtree(fixture_leaderboard)  # a fresh clone has no run folders
    assert main(["report", "--dataset", "Fix", "--out", str(tmp_path / "absent"), "--report-dir", str(report)]) == 0
    again = {p.name: p.read_bytes() for p in report.iterdir() if p.is_file()}
    assert again["leaderboard.md"] == first["leaderboard.md"] and again["leaderboard.csv"] == first["leaderboard.csv"]
    summaries = sorted(str(p.relative_to(report)) for p in report.rglob("*.json"))
    assert summaries == ["runs/Big/seed-1.json", "runs/Big/seed-2.json", "runs/Big@vfm_layers=0/seed-1.json",
                         "runs/Big@vfm_layers=0/seed-2.json", "runs/Broken/seed-1.json", "runs/Slow/seed-1.json",
                         "runs/Slow/seed-2.json", "runs/Small/seed-1.json", "runs/Small/seed-2.json", "settings.json"]
    for path in report.rglob("*"):
        if path.suffix in (".md", ".csv", ".json"):
            assert not ABSOLUTE_PATH.search(path.read_text()), path
    assert "- Big: ST-VFM backbone weights: file dinov2_vits14.safetensors (sha256 ab12)" in again["leaderboard.md"].decode()
    summary = json.loads((report / "runs" / "Big" / "seed-1.json").read_text())
    assert len(summary["cfg"]["config_sha256"]) == 64 and summary["info"]["stop_reason"] == "early stopping"


def test_no_committed_report_benchmark_file_or_readme_holds_an_absolute_path():
    """The committed reports, their summaries, the benchmark pages and scripts, and the README (benchmarks/work/ holds
    the run folders and is not committed)."""
    benchmarks = REPO / "benchmarks"
    files = [REPO / "README.md"] + [p for p in benchmarks.rglob("*") if p.is_file() and p.suffix in
                                    {".md", ".csv", ".json", ".py", ".sh"} and p.relative_to(benchmarks).parts[0] != "work"]
    assert any(p.parent.name == "runs" or p.parent.parent.name == "runs" for p in files) or not list(
        benchmarks.glob("results/*/runs")), "the committed run summaries were not searched"
    found = [f"{p.relative_to(REPO)}:{k}: {line.strip()}" for p in files
             for k, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
             if not line.startswith("#!") and ABSOLUTE_PATH.search(line)]
    assert not found, "\n".join(found)


def test_report_tables_from_fixture_run_folders(fixture_leaderboard, tmp_path):
    paths = write_report(fixture_leaderboard, tmp_path / "report")
    assert [p.name for p in paths] == ["leaderboard.md", "leaderboard.csv", "horizon_mae.png", "accuracy_vs_time.png"]
    assert all(p.stat().st_size > 0 for p in paths)
    md = paths[0].read_text()
    assert ("| 1 | Big | 3.250 ± 0.354 | 6.500 ± 0.707 | 3.250 ± 0.354 | 2.600 ± 0.283 | 3.250 ± 0.354 "
            "| 4.225 ± 0.460 | 10 | 2,000,000 | 2/2 | early stopping x2 | 11.0 | 6.5 (batch 64) | 502 | finished x2 |") in md
    assert ("| 2 | Small | 3.500 ± 0.141 | 7.000 ± 0.283 | 3.500 ± 0.141 | 2.800 ± 0.113 | 3.500 ± 0.141 "
            "| 4.550 ± 0.184 | 100 | 1,000 | 2/2 | early stopping x2 | 11.0 | 6.5 (batch 64) | 502 | finished x2 |") in md
    assert "| — | Broken | — | — | — | — | — | — | — | — | — | — | — | — | — | failed: CUDA out of memory |" in md
    assert ("- Budget: **convergence**, early stopping on validation MAE with patience 2, at most 3 epochs, at most 30 "
            "minutes of training per run (a run stopped by this cap is marked not converged and left out of means and "
            "ranks); seeds 1, 2") in md
    assert "| — | Slow | — | — | — | — | — | — | — | — | — | — | — | — | — | not converged (time cap) x2 |" in md
    assert ("## Runs stopped by the time cap (not converged: not in the means and ranks)" in md
            and "| Slow | 1 | 30 | 2 | 11.0 | 1.000 | 2.000 |\n| Slow | 2 | 30 | 2 | 11.0 | 1.100 | 2.200 |" in md)
    assert "| — | Big:vfm_layers=0 |" not in md and "| 2 | Big:vfm_layers=0 |" not in md  # ablations are not ranked
    assert ("- Ranks 1 and 2 (Big, Small) are closer than their std: MAE gap 0.250 < std 0.354; this order "
            "is not settled by these seeds.") in md
    assert ("| Big:vfm_layers=0 | 2 | 3.500 ± 0.141 | 7.000 ± 0.283 | 3.000 ± 0.141 | 2/2 | early stopping x2 "
            "| +0.250 (+7.7 %) | no | finished x2 |\n| Big (full model) | 2 | 3.250 ± 0.354 | 6.500 ± 0.707 "
            "| 2.750 ± 0.354 | 2/2 | early stopping x2 | — | — | finished x2 |") in md
    assert "Big: model_config.vfm_layers=2" in md and "- Big: Big backbone weights: file w.safetensors" in md
    assert "All finished runs share the same dataset" in md
    assert "- Peak memory: peak resident memory of the training process" in md
    assert "on cpu, 1 torch CPU thread(s) per run." in md and "software: torch x\n" in md
    rows = list(csv.DictReader(paths[1].open()))
    assert [(r["rank"], r["model"], r["status"]) for r in rows] == [("1", "Big", "finished x2"), ("2", "Small", "finished x2"),
                                                                    ("", "Broken", "failed"),
                                                                    ("", "Slow", "not converged (time cap) x2"),
                                                                    ("", "Big:vfm_layers=0", "finished x2")]
    assert float(rows[0]["MAE"]) == pytest.approx(3.25) and float(rows[0]["MAE_std"]) == pytest.approx(0.353553, 1e-5)
    assert float(rows[1]["MAPE_h12"]) == pytest.approx(4.55) and rows[2]["error"] == "CUDA out of memory"
    assert float(rows[0]["best_val_MAE"]) == pytest.approx(2.75) and rows[2]["best_val_MAE"] == ""
    again = write_report(fixture_leaderboard, tmp_path / "report2")
    assert again[0].read_text() == md and again[1].read_text() == paths[1].read_text()


def _new_call(tmp_path, models, seeds, **budget) -> Path:
    """A second leaderboard folder (e.g. a later session's, after the first one's run folders are gone)."""
    out = tmp_path / "later"
    out.mkdir()
    budget = {"dataset": "Fix", "models": models, "seeds": seeds, "epochs": 3, "patience": 2, "max_minutes": 30,
              "kind": "convergence", "overrides": {}, "config_dir": "cfg", **budget}
    (out / "leaderboard.json").write_text(json.dumps({"budget": budget, "device": "cpu", "dataset_meta": {},
                                                      "software": {"torch": "y", "cpu_threads": "1"}}))
    return out


def test_report_keeps_ended_runs_of_earlier_calls_whose_run_folders_are_gone(fixture_leaderboard, tmp_path):
    report = tmp_path / "committed"
    write_report(fixture_leaderboard, report)
    before = {p.relative_to(report): json.loads(p.read_text()) for p in (report / "runs").glob("*/seed-*.json")}
    later = _new_call(tmp_path, ["Small", "Big", "New"], [1, 3])
    fake_run(later, "Small", 1, 5.0)  # ended again: the newer result wins
    fake_run(later, "Small", 3, 3.5)  # a new seed
    fake_run(later, "Big", 1, 0, state="running")  # its process is gone: interrupted, the finished summary stays
    fake_run(later, "Broken", 1, 2.0)  # failed before, finished now
    notes: list[str] = []
    md = write_report(later, report, notes.append)[0].read_text()
    assert notes == [f"note: 7 ended runs are kept from the summaries in {report} (no ended run of this leaderboard "
                     "folder replaces them)"]
    runs = {(p.parent.name, p.stem): json.loads(p.read_text()) for p in (report / "runs").glob("*/seed-*.json")}
    assert {k: (v["state"], round(v["metrics"].get("overall", {}).get("MAE", 0), 3)) for k, v in runs.items()} == {
        ("Small", "seed-1"): ("finished", 5.0), ("Small", "seed-2"): ("finished", 3.6),
        ("Small", "seed-3"): ("finished", 3.5), ("Big", "seed-1"): ("finished", 3.0), ("Big", "seed-2"): ("finished", 3.5),
        ("Broken", "seed-1"): ("finished", 2.0), ("Slow", "seed-1"): ("not converged (time cap)", 1.0),
        ("Slow", "seed-2"): ("not converged (time cap)", 1.1), ("Big@vfm_layers=0", "seed-1"): ("finished", 3.4),
        ("Big@vfm_layers=0", "seed-2"): ("finished", 3.6), ("New", "seed-0"): ("not started", 0)}
    for path in ("Big/seed-1.json", "Slow/seed-2.json", "Big@vfm_layers=0/seed-1.json"):  # kept as they were
        assert json.loads((report / "runs" / path).read_text()) == before[Path("runs", path)], path
    settings = json.loads((report / "settings.json").read_text())
    assert settings["budget"]["models"] == ["Small", "Big", "Broken", "Slow", "Big:vfm_layers=0", "New"]
    assert settings["budget"]["seeds"] == [1, 2, 3]
    assert settings["budget"]["overrides"] == {"Big": ["model_config.vfm_layers=2"]}  # an earlier call's override
    assert "| 1 | Broken | 2.000 |" in md and "seeds 1, 2, 3" in md
    assert "software: torch y\n- Runs kept from an earlier call ran with: torch x\n" in md
    # the rebuild from the merged summaries alone is the same report
    assert main(["report", "--dataset", "Fix", "--out", str(tmp_path / "absent"), "--report-dir", str(report)]) == 0
    assert (report / "leaderboard.md").read_text() == md


def test_a_report_whose_runs_are_all_rerun_names_no_earlier_software(fixture_leaderboard, tmp_path):
    report = tmp_path / "committed"
    write_report(fixture_leaderboard, report)
    settings = json.loads((fixture_leaderboard / "leaderboard.json").read_text())
    (fixture_leaderboard / "leaderboard.json").write_text(json.dumps(dict(settings, software={"torch": "z"})))
    notes: list[str] = []
    md = write_report(fixture_leaderboard, report, notes.append)[0].read_text()  # every ended run replaced
    assert notes == [] and "software: torch z\n" in md and "earlier call" not in md


@pytest.mark.parametrize("change, message", [
    ({"patience": 5}, "patience 2 there, 5 here"),
    ({"kind": "equal epochs", "max_minutes": None}, "kind 'convergence' there, 'equal epochs' here"),
    ({"max_minutes": 10}, "a time cap of 30 minutes there, a smaller one (10) here: runs that converged there might be "
                          "capped here"),
])
def test_a_report_of_another_budget_is_not_mixed_in(fixture_leaderboard, tmp_path, change, message):
    report = tmp_path / "committed"
    write_report(fixture_leaderboard, report)
    later = _new_call(tmp_path, ["Small"], [1], **change)
    fake_run(later, "Small", 1, 5.0)
    expected = (f"{report} holds runs of another leaderboard ({message}): give this one its own --report-dir, or move "
                "that folder away to replace its report.")
    with pytest.raises(UserError) as error:
        write_report(later, report)
    assert str(error.value) == expected
    with pytest.raises(UserError) as error:  # `run` checks it before training anything
        ended_summaries(report, json.loads((later / "leaderboard.json").read_text()))
    assert str(error.value) == expected
    assert json.loads((report / "runs" / "Small" / "seed-1.json").read_text())["metrics"]["overall"]["MAE"] == 3.4


#: meta.json of the fixture's data as an older `prepare` wrote it, and as today's writes it (node_ids added, the counts
#: dropped: `shape` holds them)
OLD_META = {"name": "Fix", "shape": [40, 3], "num_nodes": 3, "num_time_steps": 40,
            "split_lengths": {"train": 24, "val": 8, "test": 8},
            "source": {"files": [{"file": "x.csv", "sha256": "ab"}]}}
NEW_META = {k: v for k, v in OLD_META.items() if k not in ("num_nodes", "num_time_steps")} | {"node_ids": None}


def _with_meta(folder: Path, meta: dict) -> None:
    settings = json.loads((folder / "leaderboard.json").read_text())
    (folder / "leaderboard.json").write_text(json.dumps(dict(settings, dataset_meta=meta)))


def test_runs_converged_under_smaller_caps_are_listed_by_cap_in_numeric_order():
    from stvfm_plugin.leaderboard.summaries import converged_under_smaller_caps

    rows = [_finished_row("A", 3.0), _finished_row("B", 3.1, 3.2), _finished_row("C", 3.3)]
    for row, cap in zip(rows, (150, 90, 160)):
        for run in row.runs:
            run.info["max_minutes"] = float(cap)
    lines = converged_under_smaller_caps(rows, 160)
    assert [line.split(" minutes")[0][-3:] for line in lines] == [" 90", "150"]  # not "150" before "90"
    assert lines[0].endswith("ended): B seed 1, B seed 2") and lines[1].endswith("ended): A seed 1")


def test_a_fresh_checkout_with_a_newer_prepare_goes_on_with_the_committed_report(fixture_leaderboard, tmp_path):
    _with_meta(fixture_leaderboard, OLD_META)
    report = tmp_path / "committed"
    write_report(fixture_leaderboard, report)
    later = _new_call(tmp_path, ["Small"], [1, 3])
    _with_meta(later, NEW_META)  # the same data, prepared again by today's `prepare` in a fresh checkout
    assert ("Small", 1) in ended_summaries(report, json.loads((later / "leaderboard.json").read_text()))
    fake_run(later, "Small", 3, 3.5)
    md = write_report(later, report)[0].read_text()
    assert json.loads((report / "settings.json").read_text())["dataset_meta"] == OLD_META  # the record is unchanged
    small = {p.stem: json.loads(p.read_text())["metrics"]["overall"]["MAE"]
             for p in (report / "runs" / "Small").glob("*")}
    assert small == {"seed-1": 3.4, "seed-2": 3.6, "seed-3": 3.5} and "seeds 1, 2, 3" in md


@pytest.mark.parametrize("change, named", [
    ({"split_lengths": {"train": 20, "val": 10, "test": 10}}, "split_lengths"),
    ({"shape": [40, 4], "num_nodes": 4}, "num_nodes, shape"),
    ({"source": {"files": [{"file": "x.csv", "sha256": "cd"}]}}, "source"),
])
def test_a_report_of_other_data_is_not_mixed_in(fixture_leaderboard, tmp_path, change, named):
    _with_meta(fixture_leaderboard, OLD_META)
    report = tmp_path / "committed"
    write_report(fixture_leaderboard, report)
    later = _new_call(tmp_path, ["Small"], [1])
    _with_meta(later, OLD_META | change)
    fake_run(later, "Small", 1, 5.0)
    expected = (f"{report} holds runs of another leaderboard (the dataset was prepared differently (its meta.json: "
                f"{named} differ)): give this one its own --report-dir, or move that folder away to replace its "
                "report.")
    for call in (lambda: ended_summaries(report, json.loads((later / "leaderboard.json").read_text())),
                 lambda: write_report(later, report)):
        with pytest.raises(UserError) as error:
            call()
        assert str(error.value) == expected
    assert json.loads((report / "runs" / "Small" / "seed-1.json").read_text())["metrics"]["overall"]["MAE"] == 3.4


def test_a_larger_cap_trains_the_capped_runs_again_and_keeps_the_converged_ones(fixture_leaderboard, tmp_path):
    report = tmp_path / "committed"
    fake_run(fixture_leaderboard, "Slow", 3, 0, state="interrupted")
    (fixture_leaderboard / "skipped.json").write_text(json.dumps({"Slow/3": "seed 1 was stopped by the cap"}))
    write_report(fixture_leaderboard, report)
    same = ended_summaries(report, json.loads((fixture_leaderboard / "leaderboard.json").read_text()))
    assert {("Slow", 1), ("Slow", 2), ("Slow", 3)} <= set(same)  # the same cap: the capped runs have ended
    later = _new_call(tmp_path, ["Small", "Slow"], [1, 2, 3], max_minutes=160)
    larger = ended_summaries(report, json.loads((later / "leaderboard.json").read_text()))
    assert set(same) - set(larger) == {("Slow", 1), ("Slow", 2), ("Slow", 3)}  # capped and skipped: trained again
    fake_run(later, "Slow", 1, 1.2, max_minutes=160)  # converged under the larger cap
    md = write_report(later, report)[0].read_text()
    assert "at most 160 minutes of training per run" in md
    assert ("- Converged under an earlier, smaller time cap of 30 minutes (kept: a larger cap does not change a run that "
            "early stopping or its epochs ended): Big seed 1, Big seed 2, Small seed 1, Small seed 2, Big:vfm_layers=0 "
            "seed 1, Big:vfm_layers=0 seed 2") in md  # in the report's row order; Slow's new run had the larger cap
    fake_run(later, "Slow", 2, 0, state="running")  # the next reopened seed, training now (e.g. a report mid-call)
    (later / "Slow" / "seed-2" / "run.lock").write_text(f"{os.getpid()} 2026-01-01 00:00:00\n")  # (this process)
    states = {row.model: row.states() for row in collect_summaries(write_report(later, report)[0].parent)[1]}
    # not its seed 2 capped under 30 minutes, nor seed 3 skipped after that cap: the larger cap trains it next
    assert states["Slow"] == "finished, running"
    assert "Not trained" not in (report / "leaderboard.md").read_text()


def test_a_larger_cap_takes_back_the_skips_of_the_smaller_one_so_no_report_mid_call_lists_them(fixture_leaderboard,
                                                                                                tmp_path, monkeypatch):
    fake_run(fixture_leaderboard, "Slow", 3, 0, state="interrupted")  # started once, then left after seed 1's cap
    skipped = fixture_leaderboard / "skipped.json"
    skipped.write_text(json.dumps({"Slow/3": "seed 1 was stopped by the 30-minute time cap"}))
    configs = tmp_path / "cfg"
    configs.mkdir()
    (configs / "Slow.py").write_text("")

    def train(budget, model, seed, folder, *rest):
        if seed == 2:
            raise KeyboardInterrupt  # the session ends while seed 2 trains on under the larger cap
        shutil.rmtree(folder)
        fake_run(fixture_leaderboard, model, seed, 1.2, max_minutes=160)  # seed 1 converged under it
        return Outcome.FINISHED

    monkeypatch.setattr(runs, "_train_one", train)
    reports = []
    budget = Budget(dataset="Fix", models=["Slow"], seeds=[1, 2, 3], epochs=3, patience=2, max_minutes=160,
                    config_dir=str(configs), skip_after_cap=True)
    with pytest.raises(KeyboardInterrupt):
        run_leaderboard(budget, fixture_leaderboard, echo=lambda line: None,
                        ended=lambda: reports.append(write_report(fixture_leaderboard, tmp_path / "report")[0]))
    assert json.loads(skipped.read_text()) == {}  # seed 3 is this call's to train, not skipped
    md = reports[-1].read_text()
    (row,) = [line for line in md.splitlines() if line.startswith("| 1 | Slow |")]
    assert row.endswith("| finished, interrupted, not converged (time cap) |") and "Not trained" not in md, md


def test_run_skips_the_runs_a_report_holds_as_ended_when_their_folders_are_gone(fixture_leaderboard, tmp_path):
    report = tmp_path / "committed"
    write_report(fixture_leaderboard, report)
    recorded = ended_summaries(report, json.loads((fixture_leaderboard / "leaderboard.json").read_text()))
    assert set(recorded) == {("Small", 1), ("Small", 2), ("Big", 1), ("Big", 2), ("Slow", 1), ("Slow", 2),
                             ("Big:vfm_layers=0", 1), ("Big:vfm_layers=0", 2)}  # not the failed run
    configs = tmp_path / "cfg"
    configs.mkdir()
    for name in ("Small", "Slow"):
        (configs / f"{name}.py").write_text("")
    lines: list[str] = []
    states = run_leaderboard(Budget(dataset="Fix", models=["Small", "Slow"], seeds=[2], epochs=3, patience=2,
                                    config_dir=str(configs)), tmp_path / "fresh", echo=lines.append, recorded=recorded)
    assert states == {"Small/2": "finished", "Slow/2": "finished"}
    assert lines == [f"[Fix 1/2] Small seed 2: ended in the report ({report / 'runs' / 'Small' / 'seed-2.json'}; its run "
                     "folder is not here), skipped; delete that summary to train it again",
                     f"[Fix 2/2] Slow seed 2: ended in the report ({report / 'runs' / 'Slow' / 'seed-2.json'}; its run "
                     "folder is not here), skipped; delete that summary to train it again"]


def test_skip_seeds_after_cap_trains_no_other_seed_of_a_capped_model_and_the_report_says_so(fixture_leaderboard,
                                                                                           tmp_path, monkeypatch):
    configs = tmp_path / "cfg"
    configs.mkdir()
    (configs / "Slow.py").write_text("")  # never run: a training attempt would fail on it
    fake_run(fixture_leaderboard, "Slow", 3, 0, state="interrupted")  # started once, then left
    lines: list[str] = []
    budget = dict(dataset="Fix", models=["Slow"], epochs=3, patience=2, max_minutes=30, config_dir=str(configs),
                  skip_after_cap=True)
    states = run_leaderboard(Budget(seeds=[1, 2, 3], **budget), fixture_leaderboard, echo=lines.append)
    assert states == {"Slow/1": "finished", "Slow/2": "finished", "Slow/3": Outcome.SKIPPED}
    assert lines[-1] == ("[Fix 3/3] Slow seed 3: not trained: seed 1 was stopped by the 30-minute time cap "
                         "(--skip-seeds-after-cap: each seed would cost the full cap and could not enter the means "
                         "and ranks)")
    report = tmp_path / "committed"
    md = write_report(fixture_leaderboard, report)[0].read_text()
    assert "| — | Slow | — |" in md and "| not converged (time cap) x2, skipped after the time cap |" in md
    assert ("Not trained (`--skip-seeds-after-cap`: once a seed of a model is stopped by the cap, its other seeds are "
            "skipped, since each would cost the full cap and could not enter the means and ranks): Slow seed 3.") in md

    # a fresh folder learns the capped seed from the report's summaries (its run folders are not there)
    recorded = ended_summaries(report, json.loads((fixture_leaderboard / "leaderboard.json").read_text()))
    assert ("Slow", 3) in recorded  # skipped is ended: a later call does not train it either
    lines.clear()
    states = run_leaderboard(Budget(seeds=[4], **budget), tmp_path / "fresh", echo=lines.append, recorded=recorded)
    assert states == {"Slow/4": Outcome.SKIPPED} and "seed 1 was stopped by the 30-minute time cap" in lines[0]
    assert json.loads((tmp_path / "fresh" / "skipped.json").read_text()) == {
        "Slow/4": "seed 1 was stopped by the 30-minute time cap"}

    # a call without the flag trains it after all: it leaves the ledger, and the report shows its own state
    monkeypatch.setattr(runs, "_train_one", lambda *args: "failed")
    assert run_leaderboard(Budget(seeds=[3], **dict(budget, skip_after_cap=False)), fixture_leaderboard,
                           echo=lines.append) == {"Slow/3": "failed"}
    assert json.loads((fixture_leaderboard / "skipped.json").read_text()) == {}
    md = write_report(fixture_leaderboard, tmp_path / "again")[0].read_text()
    assert "| interrupted, not converged (time cap) x2 |" in md and "Not trained" not in md


def test_a_run_left_running_by_a_dead_process_is_reported_as_interrupted(fixture_leaderboard):
    fake_run(fixture_leaderboard, "Small", 3, 0, state="running")
    states = {row.model: row.states() for row in collect(fixture_leaderboard)[1]}
    assert states["Small"] == "finished x2, interrupted"
    (fixture_leaderboard / "Small" / "seed-3" / "run.lock").write_text(f"{os.getpid()} 2026-01-01 00:00:00\n")
    states = {row.model: row.states() for row in collect(fixture_leaderboard)[1]}
    assert states["Small"] == "finished x2, running"  # its process (here: this one) is alive


def test_a_run_in_its_first_epoch_is_running_not_not_started(fixture_leaderboard):
    first = fixture_leaderboard / "Small" / "seed-3"
    first.mkdir()
    (first / "cfg.json").write_text("{}")  # started: no status.json until its model is built and training starts
    (first / "run.lock").write_text(f"{os.getpid()} 2026-01-01 00:00:00\n")  # its process (here: this one) is alive
    states = {row.model: row.states() for row in collect(fixture_leaderboard)[1]}
    assert states["Small"] == "finished x2, running"
    (first / "run.lock").unlink()  # no live process: it never got going
    states = {row.model: row.states() for row in collect(fixture_leaderboard)[1]}
    assert states["Small"] == "finished x2, not started"


def _finished_row(model, *maes, rank=None, state="finished"):
    info = {"epochs_run": 5, "stop_reason": "early stopping" if state == "finished" else "time cap"}
    return ModelRow(model, [SeedRun(k, state, {"overall": {"MAE": m, "RMSE": 2 * m}}, dict(info))
                            for k, m in enumerate(maes, 1)], rank=rank)


def test_progress_line_of_a_run_before_and_after_its_first_epoch():
    from stvfm_plugin.leaderboard.runs import _progress

    assert _progress({"state": "running", "epoch": 0, "num_epochs": 100}) == "training started, epoch 1/100 under way"
    assert _progress({"state": "running", "epoch": 3, "num_epochs": 100, "metric": "MAE", "val": 3.51234,
                      "best_val": 3.4}) == "epoch 3/100, val MAE 3.5123 (best 3.4000)"


@pytest.mark.parametrize("resumed, expected", [
    (False, "1.5 min"),
    (True, "1.5 min since resuming, 4.0 min of training in all its epochs"),
])
def test_finished_line_counts_every_epoch_of_a_resumed_run(resumed, expected):
    from stvfm_plugin.leaderboard.runs import _took

    assert _took(90.0, resumed, {"seconds_per_epoch": [100.0, 80.0, 60.0]}) == expected


def test_ablation_beyond_the_std_needs_a_gap_larger_than_both_stds():
    row = _finished_row
    full, random = row("M", 3.0, 3.1, 3.2), row("M:pretrained=False", 3.5, 3.6, 3.7)
    for run, val in zip(full.runs, (2.9, 3.0, 3.1)):
        run.info["best_metrics"] = {"val/MAE": val}
    random.runs[0].info["best_metrics"] = {"val/MAE": 3.4}  # a summary from before best_metrics was kept: 1 of 3
    lines = ablations([full, random, row("M:vfm_layers=0", 3.05, 3.15, 3.25), row("M:one_seed=1", 9.0)])
    table = "\n".join(lines)
    assert ("| M:pretrained=False | 3 | 3.600 ± 0.100 | 7.200 ± 0.200 | 3.400 (1 of 3 seeds) | 5/5/5 | early stopping x3 "
            "| +0.500 (+16.1 %) | yes |") in table
    assert "| M:vfm_layers=0 | 3 | 3.150 ± 0.100 | 6.300 ± 0.200 | — | 5/5/5 | early stopping x3 | +0.050 (+1.6 %) | no |" in table
    assert "| M:one_seed=1 | 1 | 9.000 | 18.000 | — | 5 | early stopping | +5.900 (+190.3 %) | — |" in table  # no std: undecided
    assert table.endswith("| M (full model) | 3 | 3.100 ± 0.100 | 6.200 ± 0.200 | 3.000 ± 0.100 | 5/5/5 "
                          "| early stopping x3 | — | — | finished x3 |")


def test_ablations_of_a_model_the_cap_stopped_say_so_and_give_what_it_reached():
    capped = _finished_row("L", 4.2, state="not converged (time cap)")
    capped.runs[0].info["epochs_run"] = 13
    lines = ablations([capped, _finished_row("L:llm_layers=0", 4.3, 4.28), _finished_row("M", 3.0),
                       _finished_row("M:vfm_layers=0", 3.1)])
    table = "\n".join(lines)
    assert "| L:llm_layers=0 | 2 | 4.290 ± 0.014 | 8.580 ± 0.028 | — | 5/5 | early stopping x2 | — (full model capped) | — |" in table
    assert "| M:vfm_layers=0 | 1 | 3.100 | 6.200 | — | 5 | early stopping | +0.100 (+3.3 %) | — | finished |" in table
    assert lines[-1] == ("L: the full model has no converged run (each of its runs that ended training was stopped by "
                         "the time cap), so no change is computed against it. What it reached at the cap, test MAE: "
                         "L 4.200 (seed 1, 13 epochs) (see \"Runs stopped by the time cap\").")
    assert not any("full model has no converged run" in line for line in ablations([_finished_row("M", 3.0),
                                                                                     _finished_row("M:x=1", 3.1)]))


def test_ablation_rows_order_the_numbers_in_their_overrides_by_value():
    names = ["M:vfm_layers=12", "M:vfm_layers=6", "M:pretrained=False", "M:vfm_layers=0"]
    lines = ablations([_finished_row("M", 3.0)] + [_finished_row(name, 3.1) for name in names])
    order = [line.split(" | ")[0][2:] for line in lines if line.startswith("| M")]
    assert order == ["M:pretrained=False", "M:vfm_layers=0", "M:vfm_layers=6", "M:vfm_layers=12", "M (full model)"]


def test_tables_list_full_models_in_rank_order_then_ablation_rows_naturally_sorted():
    met = [_finished_row("M:vfm_layers=12", 3.2), _finished_row("STID", 3.0, rank=1), _finished_row("M:vfm_layers=6", 3.1),
           _finished_row("M", 3.1, rank=2), _finished_row("M:pretrained=False", 3.3)]  # the order the runs were met
    assert [r.model for r in display_order(met)] == ["STID", "M", "M:pretrained=False", "M:vfm_layers=6",
                                                      "M:vfm_layers=12"]


def test_verdict_says_plainly_whether_stvfm_reaches_the_targets():
    stid = _finished_row("STID", 3.55, 3.60, 3.65, rank=1)
    text = "\n".join(verdict([stid, _finished_row("STVFM", 3.70, 3.72, 3.74, rank=2),
                               _finished_row("STVFM:pretrained=False", 3.70, 3.73, 3.76),
                               _finished_row("STVFM:vfm_layers=0", 3.60, 3.68),
                               _finished_row("GWNet", 3.1, 3.2, 3.3, state="not converged (time cap)"),
                               ModelRow("NHiTS", [])], seeds=[1, 2, 3]))
    assert "- ST-VFM / best baseline (STID): 3.720 / 3.600 = 1.033: **target (at most 0.97) not reached**." in text
    assert ("against a random backbone (`STVFM:pretrained=False`): 3.720 ± 0.020 against 3.730 ± 0.030: pretrained "
            "better by 0.010, less than the std 0.030: **does not beat it**.") in text
    assert ("against no backbone (`STVFM:vfm_layers=0`): 3.720 ± 0.020 against 3.640 ± 0.057: pretrained worse by "
            "0.080, more than the std 0.057: **does not beat it**.") in text
    assert "**Targets: not reached.**" in text
    assert "may change: STVFM:vfm_layers=0 (2 of 3 seeds ended: finished x2), NHiTS (not started)." in text  # a capped row is ended
    assert "Not compared (no converged run: each of its runs that ended training was stopped by the time cap): GWNet." in text

    partly = _finished_row("GWNet", 3.1, state="not converged (time cap)")  # one seed of three ended, capped
    text = "\n".join(verdict([stid, _finished_row("STVFM", 3.70, 3.72, 3.74, rank=2), partly], seeds=[1, 2, 3]))
    assert "may change: GWNet (1 of 3 seeds ended: not converged (time cap))." in text  # two still to run

    partly.runs += [SeedRun(2, Outcome.SKIPPED), SeedRun(3, Outcome.SKIPPED)]  # left by --skip-seeds-after-cap: ended
    text = "\n".join(verdict([stid, _finished_row("STVFM", 3.70, 3.72, 3.74, rank=2), partly], seeds=[1, 2, 3]))
    assert "may change" not in text and "ended training was stopped by the time cap): GWNet." in text
    assert "ended training was stopped by the time cap): GWNet." in text
    assert "Means over fewer seeds" not in text  # nothing converged: not compared at all

    mixed = _finished_row("GWNet", 3.2, rank=3)  # seed 1 converged, seeds 2 and 3 stopped by the cap
    mixed.runs += _finished_row("GWNet", 0, 3.3, 3.4, state="not converged (time cap)").runs[1:]
    text = "\n".join(verdict([stid, _finished_row("STVFM", 3.70, 3.72, 3.74, rank=2), mixed], seeds=[1, 2, 3]))
    assert ("Means over fewer seeds than the protocol's (the others were stopped by the time cap: what they reached "
            "is under *Runs stopped by the time cap*): GWNet (seed 1 converged; seeds 2, 3 stopped by the cap).") in text
    assert "Not compared" not in text and "may change" not in text
    assert "the epoch limit, not early stopping, ended (patience" not in text  # GWNet seed 1 stopped early

    mixed.runs[0].info["stop_reason"] = "max epochs"  # its 100 epochs ran out while it still improved
    text = "\n".join(verdict([stid, _finished_row("STVFM", 3.70, 3.72, 3.74, rank=2), mixed], seeds=[1, 2, 3]))
    assert ("Ranked on runs that the epoch limit, not early stopping, ended (patience unspent: more epochs might still "
            "lower their MAE, so their places hold at this epoch budget only): GWNet (seed 1).") in text

    text = "\n".join(verdict([_finished_row("STVFM", 3.0, 3.02, rank=1), _finished_row("STID", 3.2, 3.3, rank=2),
                               _finished_row("STVFM:pretrained=False", 3.2, 3.25),
                               _finished_row("STVFM:vfm_layers=0", 3.3)], seeds=[1, 2]))
    assert "(STID): 3.010 / 3.250 = 0.926: **target (at most 0.97) reached**." in text
    assert "pretrained better by 0.215, more than the std 0.035: **beats it**." in text
    assert "3.010 ± 0.014 against 3.300: undecided (fewer than two seeds on one side, no std)." in text
    assert "**Targets: undecided.**" in text and "may change: STVFM:vfm_layers=0 (1 of 2 seeds ended: finished)." in text

    text = "\n".join(verdict([_finished_row("STVFM", 3.0, 3.02, rank=1)], seeds=[1, 2]))
    assert "best baseline: undecided (no finished run of any baseline)." in text
    assert "(`STVFM:pretrained=False`): undecided (no finished run of the variant: not in this leaderboard)." in text
    assert verdict([stid], seeds=[1, 2, 3]) == []  # a leaderboard without ST-VFM has no such section
    # its config changed (relabel): the old rows are ablations, the new config has not trained yet
    text = "\n".join(verdict([stid, _finished_row("STVFM:train_backbone_norms=False", 3.7, 3.72)], seeds=[1, 2]))
    assert "- ST-VFM against the best baseline: undecided (no finished run of ST-VFM)." in text
    assert "(`STVFM:vfm_layers=0`): undecided (no finished run of ST-VFM)." in text and "**Targets: undecided.**" in text


def test_interim_line_says_when_rows_still_to_finish_cannot_change_the_answers():
    stid = _finished_row("STID", 3.55, 3.60, 3.65, rank=1)
    rows = [stid, _finished_row("STVFM", 3.70, 3.72, 3.74, rank=2),
            _finished_row("STVFM:pretrained=False", 3.70, 3.73, 3.76),
            _finished_row("STVFM:vfm_layers=0", 3.60, 3.68, 3.64), _finished_row("GWNet", 3.8, rank=3)]
    text = "\n".join(verdict(rows, seeds=[1, 2, 3]))
    assert ("Interim: these rows do not have every seed yet: GWNet (1 of 3 seeds ended: finished). They may still change the ranks and the "
            "best baseline, not the answers above: ST-VFM, STID and both backbone variants have every seed, and a "
            "rival still to finish can only lower the best baseline's MAE, so a target not reached stays not "
            "reached.") in text
    stid.runs.pop()  # the best baseline's mean may still rise: the ratio may still drop below the target
    assert ("so the best baseline and the answers above may change: STID (2 of 3 seeds ended: finished x2), GWNet (1 "
            "of 3 seeds ended: finished).") in "\n".join(verdict(rows, seeds=[1, 2, 3]))
    rows[0] = _finished_row("STID", 3.95, 4.0, 4.05, rank=2)  # a reached target can still be lost to GWNet
    assert "may change: GWNet (1 of 3 seeds ended: finished)." in "\n".join(verdict(rows, seeds=[1, 2, 3]))
    rows[0] = stid = _finished_row("STID", 3.55, 3.60, 3.65, rank=1)
    rows[3].runs.pop()  # a backbone variant still to finish
    assert ("may change: STVFM:vfm_layers=0 (2 of 3 seeds ended: finished x2), GWNet (1 of 3 seeds ended: "
            "finished).") in "\n".join(verdict(rows, seeds=[1, 2, 3]))


def test_verdict_says_when_the_epoch_limit_stopped_the_side_behind():
    random = _finished_row("STVFM:pretrained=False", 3.80, 3.82)
    random.runs[1].info["stop_reason"] = "max epochs"  # patience unspent: it might have improved further
    subject = _finished_row("STVFM", 3.70, 3.72, rank=1)
    rows = [_finished_row("STID", 3.9, 3.95, rank=2), subject, random, _finished_row("STVFM:vfm_layers=0", 3.65, 3.69)]
    lines = verdict(rows, seeds=[1, 2])
    assert [line for line in lines if "Caveat" in line] == [
        "- Pretrained backbone against a random backbone (`STVFM:pretrained=False`): 3.710 ± 0.014 against 3.810 ± "
        "0.014: pretrained better by 0.100, more than the std 0.014: **beats it**. Caveat: the epoch limit, not early "
        "stopping, ended STVFM:pretrained=False, the side behind, in 1 of 2 seeds (patience unspent: more epochs might "
        "close the gap), so this answer holds at this epoch budget only."]
    subject.runs[0].info["stop_reason"] = "max epochs"  # now behind no backbone (3.67) but ahead of STID and random
    lines = verdict(rows, seeds=[1, 2])
    caveats = {line.split(":")[0]: line.split("Caveat: ")[1] for line in lines if "Caveat" in line}
    assert list(caveats) == ["- Pretrained backbone against a random backbone (`STVFM", "- Pretrained backbone against "
                             "no backbone (`STVFM"]  # the side behind: random, then ST-VFM itself
    assert "ended STVFM, the side behind, in 1 of 2 seeds" in caveats[
        "- Pretrained backbone against no backbone (`STVFM"]
    rows[0].runs[1].info["stop_reason"] = "max epochs"  # the best baseline, behind a target that is reached
    assert "0.945: **target (at most 0.97) reached**. Caveat: the epoch limit, not early stopping, ended STID, the " \
           "side behind, in 1 of 2 seeds" in "\n".join(verdict(rows, seeds=[1, 2]))


def test_report_flags_runs_that_do_not_share_the_protocol(fixture_leaderboard, tmp_path):
    cfg = fixture_leaderboard / "Small" / "seed-1" / "cfg.json"
    cfg.write_text(cfg.read_text().replace('"null_val": 0.0', '"null_val": -1.0'))
    md = write_report(fixture_leaderboard, tmp_path / "r")[0].read_text()
    assert "**The runs do not share one protocol:**" in md and "- null_val: " in md


def test_report_gives_the_threads_each_run_recorded_not_the_latest_call(fixture_leaderboard, tmp_path):
    info = fixture_leaderboard / "Small" / "seed-2" / "run_info.json"
    info.write_text(info.read_text().replace('"cpu_threads": [1]', '"cpu_threads": [1, 2]'))
    md = write_report(fixture_leaderboard, tmp_path / "r")[0].read_text()
    assert "on cpu, torch CPU threads per run: Big 1; Small 1/2; Big:vfm_layers=0 1." in md
    for path in (fixture_leaderboard / "Big").glob("seed-*/run_info.json"):
        path.write_text(json.dumps({k: v for k, v in json.loads(path.read_text()).items() if k != "cpu_threads"}))
    md = write_report(fixture_leaderboard, tmp_path / "r2")[0].read_text()
    assert ("torch CPU threads per run: Small 1/2; Big:vfm_layers=0 1 (Big: not recorded by the run; the latest `leaderboard run` call "
            "had 7).") in md


def test_report_without_a_leaderboard_says_what_to_run(tmp_path):
    with pytest.raises(UserError, match="holds no leaderboard.json: run `python -m stvfm_plugin.leaderboard run`"):
        collect(tmp_path)


# ---- running: failures recorded, finished models skipped --------------------------------------
def test_failing_model_is_reported_not_fatal_and_finished_models_are_skipped(tiny_dataset, workdir):
    configs = workdir / "cfgs"
    configs.mkdir()
    write_config(configs, STID_TINY, "Good_Tiny.py")
    write_config(configs, STID_TINY.replace("num_features=12", "num_features=13"), "Bad_Tiny.py")
    budget = Budget(dataset="Tiny", models=["Bad", "Good"], seeds=[1], epochs=1, patience=1, config_dir=str(configs))
    lines: list[str] = []
    states = run_leaderboard(budget, workdir / "lb", echo=lines.append)
    assert states == {"Bad/1": "failed", "Good/1": "finished"}
    assert any("Bad seed 1: FAILED (exit 2): model_config.num_features=13, but dataset Tiny has 12." in l
               and "going on with the next model" in l for l in lines), lines
    assert any("Good seed 1: finished in " in l and "(max epochs after epoch 1), test MAE" in l for l in lines), lines
    status = json.loads((workdir / "lb" / "Bad" / "seed-1" / "status.json").read_text())
    assert status["state"] == "failed" and status["error"]
    info = json.loads((workdir / "lb" / "Good" / "seed-1" / "run_info.json").read_text())
    assert info["seed"] == 1 and info["num_epochs"] == 1
    md = write_report(workdir / "lb", workdir / "report")[0].read_text()
    assert "| 1 | Good |" in md and "| — | Bad |" in md and "failed: " in md

    lines.clear()
    states = run_leaderboard(Budget(dataset="Tiny", models=["Good"], seeds=[1], epochs=1, patience=1,
                                    config_dir=str(configs)), workdir / "lb", echo=lines.append)
    assert states == {"Good/1": "finished"} and lines == ["[Tiny 1/1] Good seed 1: already finished, skipped"]
    saved = json.loads((workdir / "lb" / "leaderboard.json").read_text())["budget"]["models"]
    assert saved == ["Good", "Bad"]  # a call with fewer rows keeps the earlier ones in the report


def test_leaderboard_command_end_to_end(tiny_dataset, workdir):
    configs = workdir / "cfgs"
    configs.mkdir()
    write_config(configs, STID_TINY, "STID_Tiny.py")
    proc = subprocess.run([python(), "-m", "stvfm_plugin.leaderboard", "run", "--dataset", "Tiny", "--models", "STID",
                           "--epochs", "1", "--patience", "3", "--seeds", "1", "2", "--config-dir", str(configs),
                           "--set", "STID:model_config.num_layers=2"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "[Tiny 2/2] STID seed 2: finished" in proc.stdout and "done: 2 finished, 0 failed" in proc.stdout
    md = (workdir / "leaderboard" / "Tiny" / "report" / "leaderboard.md").read_text()
    assert "| 1 | STID |" in md and " ± " in md and "STID: model_config.num_layers=2" in md
    cfg = json.loads((workdir / "leaderboard" / "Tiny" / "STID" / "seed-2" / "cfg.json").read_text())
    assert cfg["model_config"]["num_layers"] == 2 and cfg["seed"] == 2
    assert [c["params"]["patience"] for c in cfg["callbacks"] if c["name"] == "EarlyStopping"] == [3]
    report = subprocess.run([python(), "-m", "stvfm_plugin.leaderboard", "report", "--dataset", "Tiny"],
                            capture_output=True, text=True, timeout=300)
    assert report.returncode == 0 and "leaderboard.md" in report.stdout and "warning" not in report.stderr
    report_dir = workdir / "leaderboard" / "Tiny" / "report"
    assert (report_dir / "forecasts.png").stat().st_size > 0  # STID, the best model here, against the truth
    forecast = json.loads((report_dir / "runs" / "STID" / "seed-1.json").read_text())["forecast"]
    assert len(forecast["sensors"]) == 3 and len(forecast["truth"][0]) == len(forecast["times"]) == 60

    shutil.rmtree(workdir / "leaderboard" / "Tiny" / "STID" / "seed-2")
    report = subprocess.run([python(), "-m", "stvfm_plugin.leaderboard", "report", "--dataset", "Tiny"],
                            capture_output=True, text=True, timeout=300)
    assert report.returncode == 0, report.stderr
    assert report.stderr.strip() == ("note: 1 ended run is kept from the summaries in leaderboard/Tiny/report (no ended "
                                     "run of this leaderboard folder replaces them)")  # its summary is the record
    assert "| 1 | STID |" in (report_dir / "leaderboard.md").read_text() and "finished x2 |" in (
        report_dir / "leaderboard.md").read_text()

    # a report without that summary: the deleted run folder is not "not started"
    report = subprocess.run([python(), "-m", "stvfm_plugin.leaderboard", "report", "--dataset", "Tiny",
                             "--report-dir", "fresh"], capture_output=True, text=True, timeout=300)
    assert report.returncode == 0, report.stderr
    (line,) = report.stderr.strip().splitlines()
    assert re.fullmatch(r"warning: STID seed 2: run folder leaderboard/Tiny/STID/seed-2 is gone \(started "
                        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\); run the leaderboard again to train it", line), line
    md = (workdir / "fresh" / "leaderboard.md").read_text()
    assert "deleted, finished: run folder leaderboard/Tiny/STID/seed-2 is gone" in md


def test_tune_trains_candidates_on_validation_only_and_ranks_them(tiny_dataset, workdir):
    configs = workdir / "cfgs"
    configs.mkdir()
    write_config(configs, STID_TINY, "STID_Tiny.py")
    proc = subprocess.run([python(), "-m", "stvfm_plugin.leaderboard", "tune", "--dataset", "Tiny", "--models", "STID",
                           "STID:num_layers=2", "STID:num_features=13", "--epochs", "2", "--patience", "3", "--seeds",
                           "1", "2", "--config-dir", str(configs)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = workdir / "tune" / "Tiny"
    assert not list(out.rglob("test_metrics.json")) and not list(out.rglob("test_results"))  # never tested
    launch = json.loads((out / "STID" / "seed-1" / "launch.json").read_text())
    assert "--no-test" in launch["command"] and "--save-results" not in launch["command"]
    assert "[Tiny 2/6] STID seed 2: finished" in proc.stdout and "(not tested)" in proc.stdout
    table = (out / "tune.md").read_text()
    assert table in proc.stdout and "the test split was never evaluated" in table
    best = {m: [json.loads((out / m.replace(":", "@") / f"seed-{k}" / "run_info.json").read_text())["best_metrics"]
                ["val/MAE"] for k in (1, 2)] for m in ("STID", "STID:num_layers=2")}
    means = {m: sum(v) / 2 for m, v in best.items()}
    chosen = min(means, key=means.get)
    rows = [line for line in table.splitlines() if line.startswith("| 1 |") or line.startswith("| 2 |")]
    assert rows[0].startswith(f"| 1 | {chosen} | 2 | {means[chosen]:.4f} ± ")
    assert f"Chosen on validation: **{chosen}**" in table
    assert "| — | STID:num_features=13 | 0 | — | — | — | — | failed x2: model_config.num_features=13, but dataset " \
           "Tiny has 12." in table
    assert not (out / "report").exists()  # no leaderboard report from a tuning folder


def test_tune_keeps_summaries_in_its_report_dir_and_does_not_train_their_runs_again(tiny_dataset, workdir):
    configs = workdir / "cfgs"
    configs.mkdir()
    write_config(configs, STID_TINY, "STID_Tiny.py")

    def tune(*seeds: str) -> subprocess.CompletedProcess:
        proc = subprocess.run([python(), "-m", "stvfm_plugin.leaderboard", "tune", "--dataset", "Tiny", "--models",
                               "STID", "STID:num_layers=2", "--epochs", "1", "--seeds", *seeds, "--config-dir",
                               str(configs), "--report-dir", "kept"], capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return proc

    tune("1")
    first = (workdir / "kept" / "tune.md").read_text()
    assert sorted(p.name for p in (workdir / "kept" / "runs" / "STID").glob("*.json")) == ["seed-1.json"]
    shutil.rmtree(workdir / "tune")  # a fresh checkout: the run folders are gone, the summaries are committed
    proc = tune("1", "2")
    assert "STID seed 1: ended in the report (kept/runs/STID/seed-1.json; its run folder is not here), skipped" in proc.stdout
    assert not (workdir / "tune" / "Tiny" / "STID" / "seed-1").exists()  # not trained again
    table = (workdir / "kept" / "tune.md").read_text()
    assert table != first and "| STID | 2 |" in table and "| STID:num_layers=2 | 2 |" in table
    assert not list((workdir / "kept").rglob("test_metrics.json"))


def _validated_row(model, *vals):
    return ModelRow(model, [SeedRun(k, "finished", None, {"epochs_run": 5, "stop_reason": "early stopping",
                                                          "best_metrics": {"val/MAE": v}})
                            for k, v in enumerate(vals, 1)])


@pytest.mark.parametrize("rows, says, never", [
    ([("M", 3.0, 3.1), ("M:a=1", 3.5, 3.6)], ["Chosen on validation: **M**."], ["not a candidate", "Nothing to"]),
    ([("M:a=1", 3.5)], ["Nothing to choose between: only M:a=1 has a validation result.",
                        "The committed config of M is not a candidate here", "(`--models M M:...`)"], ["Chosen"]),
    ([("M:a=1", 3.5), ("M:a=2", 3.0)], ["Chosen on validation: **M:a=2**.", "The committed config of M is not a "
                                        "candidate here, so this table cannot say whether a change beats it"], []),
    ([("M", 3.0), ("M:a=1",)], ["Nothing to choose between: only M has a validation result."], ["Chosen"]),
    # controls (a random backbone, none) are ranked and set against their candidate, never chosen
    ([("M", 3.0, 3.1), ("M:a=1", 3.2, 3.3), ("M:vfm_layers=0", 2.9, 2.95), ("M:pretrained=False", 3.2, 3.3)],
     ["Chosen on validation: **M**.", "Better on validation without the pretrained backbone: M:vfm_layers=0",
      "| M | 3.0500 ± 0.0707 (2) | 3.2500 ± 0.0707 (2) | 2.9250 ± 0.0354 (2) | no: none is as good or better |"],
     ["**M:vfm_layers=0**"]),
    ([("M:a=1", 3.0, 3.02), ("M:a=1,pretrained=False", 3.3, 3.31), ("M:a=1,vfm_layers=0", 3.4, 3.42), ("M", 3.5)],
     ["| M:a=1 | 3.0100 ± 0.0141 (2) | 3.3050 ± 0.0071 (2) | 3.4100 ± 0.0141 (2) | yes |"], ["Better on validation"]),
    ([("M", 3.0, 3.2), ("M:pretrained=False", 3.15, 3.16)], ["| M | 3.1000 ± 0.1414 (2) | 3.1550 ± 0.0071 (2) | — | "
                                                            "not settled: within the std of random |"], []),
    ([("S", 3.0), ("S:llm_layers=0,unfrozen_layers=0", 3.5), ("S:x=1,pretrained=False", 3.1)],
     ["| S | 3.0000 (1) | — | 3.5000 (1) | — (random not tried) |",
      "| S:x=1 | — | 3.1000 (1) | — | — (not tried with the pretrained backbone) |"], []),
])
def test_tune_table_chooses_only_between_two_results_and_names_a_missing_reference(rows, says, never):
    budget = {"dataset": "Tiny", "seeds": [1, 2], "kind": "convergence", "patience": 3, "epochs": 9}
    table = tune_markdown(budget, [_validated_row(model, *vals) for model, *vals in rows])
    for text in says:
        assert text in table
    for text in never:
        assert text not in table


def _tune_dir(folder: Path, dataset: str, rows) -> Path:
    budget = {"dataset": dataset, "seeds": [1, 2], "kind": "convergence", "patience": 3, "epochs": 9}
    export_summaries({"budget": budget, "dataset_meta": {"nodes": 3}}, [_validated_row(*r) for r in rows], folder)
    return folder


def test_choose_ranks_candidates_by_their_mean_ratio_to_the_reference_over_datasets(tmp_path, capsys):
    a = _tune_dir(tmp_path / "A", "DataA", [("M", 3.0, 3.2), ("M:a=1", 2.9, 3.1), ("M:b=1", 3.0),
                                            ("M:a=1,pretrained=False", 2.0, 2.0)])
    b = _tune_dir(tmp_path / "B", "DataB", [("M", 2.0, 2.0), ("M:a=1", 2.2, 2.2), ("M:b=1", 1.5, 1.5),
                                            ("M:c=1", 1.9, 1.9), ("M:a=1,vfm_layers=0", 1.0, 1.0)])
    assert main(["choose", str(a), str(b), "--reference", "M"]) == 0
    table = capsys.readouterr().out
    assert "| Rank | Candidate | DataA | DataB | Mean ratio |" in table
    assert "| 1 | M | 1.0000 (3.1000, 2 of 2) | 1.0000 (2.0000, 2 of 2) | 1.0000 ± 0.0228 |" in table
    assert "| 2 | M:a=1 | 0.9677 (3.0000, 2 of 2) | 1.1000 (2.2000, 2 of 2) | 1.0339 ± 0.0228 |" in table
    assert "| — | M:b=1 | 0.9677 (3.0000, 1 of 2) | 0.7500 (1.5000, 2 of 2) | — (seeds missing) |" in table
    assert "| — | M:c=1 | — (0 of 2) | 0.9500 (1.9000, 2 of 2) | — (seeds missing) |" in table
    assert "pretrained=False" not in table and "vfm_layers=0" not in table  # controls are never candidates
    assert table.strip().endswith("Chosen: **M**; still to finish, and possibly better: M:b=1, M:c=1.")
    _tune_dir(b, "DataB", [("M", 2.0, 2.0), ("M:a=1", 2.0, 2.3)])  # now within the seeds' spread of M
    assert main(["choose", str(a), str(b), "--reference", "M", "--write", str(tmp_path / "choice.md")]) == 0
    assert (tmp_path / "choice.md").read_text().strip().endswith(
        "Chosen: **M**; within the larger spread of the chosen one: M:a=1 (not settled by these seeds); still to "
        "finish, and possibly better: M:b=1.")
    assert main(["choose", str(a), str(b), "--reference", "M:c=1"]) == 2
    assert capsys.readouterr().err.strip().endswith(
        "error: DataA: the reference M:c=1 has no validation result in its tuning folder; name a candidate every "
        "dataset tried (usually the committed config).")


def test_leaderboard_run_where_every_model_fails_exits_2(tiny_dataset, workdir):
    configs = workdir / "cfgs"
    configs.mkdir()
    write_config(configs, STID_TINY.replace("num_features=12", "num_features=13"), "Bad_Tiny.py")
    proc = subprocess.run([python(), "-m", "stvfm_plugin.leaderboard", "run", "--dataset", "Tiny", "--models", "Bad",
                           "--epochs", "1", "--config-dir", str(configs)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == ("error: every run failed (Bad/1); the report shows each error, the "
                                                    "logs are in leaderboard/Tiny.")
    assert (workdir / "leaderboard" / "Tiny" / "report" / "leaderboard.md").is_file()


def test_a_second_call_on_a_folder_in_use_fails_at_once_and_a_killed_call_leaves_it_free(tiny_dataset, workdir,
                                                                                            capsys):
    out = workdir / "lb"
    (workdir / "cfgs").mkdir()
    write_config(workdir / "cfgs", STID_TINY, "Good.py")  # a row that would train (its checks pass before the lock)
    argv = ["run", "--dataset", "Tiny", "--models", "Good", "--epochs", "1", "--out", str(out), "--config-dir",
            str(workdir / "cfgs")]
    with exclusive_use(out):
        assert main(argv) == 2
        assert sorted(p.name for p in out.iterdir()) == [LOCK_FILE]  # nothing trained, nothing written
    assert not list(out.iterdir())  # the lock goes when its call ends
    err = capsys.readouterr().err
    assert re.fullmatch(rf"error: {re.escape(str(out))} is in use by another leaderboard call \(pid {os.getpid()}, "
                        r"since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\)\. Wait for it to end, or give this call its own "
                        r"--out and merge the two later with `python -m stvfm_plugin\.leaderboard report --out <that "
                        r"folder> --report-dir <the report folder>`\.", err.strip()), err
    holder = subprocess.Popen([python(), "-c", "import sys, time; from pathlib import Path; from stvfm_plugin."
                               "leaderboard.runs import exclusive_use\nwith exclusive_use(Path(sys.argv[1])):\n"
                               "    print('held', flush=True); time.sleep(600)", str(out)], stdout=subprocess.PIPE,
                              text=True)
    assert holder.stdout.readline() == "held\n"
    with pytest.raises(UserError, match=rf"in use by another leaderboard call \(pid {holder.pid}, since "):
        with exclusive_use(out):
            pass
    holder.kill()
    holder.wait(timeout=60)
    with exclusive_use(out):  # the lock went with the killed process
        assert (out / LOCK_FILE).read_text().startswith(f"{os.getpid()} ")


def test_a_run_still_training_in_another_process_is_left_to_it_not_failed(tiny_dataset, workdir, capsys):
    (workdir / "cfgs").mkdir()
    write_config(workdir / "cfgs", STID_TINY, "Good.py")
    out = workdir / "lb"
    busy = out / "Good" / "seed-1"  # e.g. a run that outlived a killed leaderboard call
    busy.mkdir(parents=True)
    running = {"state": "running", "epoch": 3, "num_epochs": 9, "best_val": 3.5}
    (busy / "status.json").write_text(json.dumps(running))
    (busy / "run.lock").write_text(f"{os.getpid()} 2026-01-01 00:00:00\n")  # its process (here: this one) is alive
    assert main(["run", "--dataset", "Tiny", "--models", "Good", "--seeds", "1", "--epochs", "1", "--out", str(out),
                 "--config-dir", str(workdir / "cfgs")]) == 0
    printed = capsys.readouterr().out
    assert (f"[Tiny 1/1] Good seed 1: still training in process {os.getpid()} (started by an earlier call), left to "
            "it; run this command again when it has ended to collect it") in printed
    assert "[Tiny] done: 0 finished, 1 still training in other processes (Good/1), 0 failed" in printed
    assert json.loads((busy / "status.json").read_text()) == running  # nothing written into the folder it holds
    started = out / "started.json"
    assert not (out / "Good" / "seed-1.log").exists()  # not launched a second time
    assert "Good/1" not in (json.loads(started.read_text()) if started.is_file() else {})
    assert "| running |" in (out / "report" / "leaderboard.md").read_text()


@pytest.mark.parametrize("command", ["run", "tune"])
def test_each_run_that_ends_is_in_the_report_at_once_so_a_call_cut_short_loses_none(tiny_dataset, workdir, capsys,
                                                                                    monkeypatch, command):
    (workdir / "cfgs").mkdir()
    write_config(workdir / "cfgs", STID_TINY, "Good.py")
    train = runs._train_one

    def session_ends_at_seed_2(budget, model, seed, *rest):
        if seed == 2:
            raise KeyboardInterrupt  # the call is cut short while its second run trains
        return train(budget, model, seed, *rest)

    monkeypatch.setattr(runs, "_train_one", session_ends_at_seed_2)
    out = workdir / "lb"
    assert main([command, "--dataset", "Tiny", "--models", "Good", "--seeds", "1", "2", "--epochs", "1",
                 "--out", str(out), "--config-dir", str(workdir / "cfgs")]) == 130
    table = out / ("report/leaderboard.md" if command == "run" else "tune.md")
    assert f"[Tiny] rewrote {table} with the runs as they stand" in capsys.readouterr().out
    text = table.read_text()
    assert any("| Good |" in line and line.endswith("| finished |") for line in text.splitlines()), text
    assert "finished x2" not in text  # seed 1, and only it, ended


def test_a_report_that_cannot_be_written_between_runs_does_not_stop_the_next_run(tiny_dataset, workdir, capsys,
                                                                                monkeypatch):
    (workdir / "cfgs").mkdir()
    write_config(workdir / "cfgs", STID_TINY, "Good.py")
    from stvfm_plugin.leaderboard import report

    real, calls = report.write_report, []

    def disk_full_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise OSError(28, "No space left on device")
        return real(*args, **kwargs)

    monkeypatch.setattr(report, "write_report", disk_full_once)
    out = workdir / "lb"
    assert main(["run", "--dataset", "Tiny", "--models", "Good", "--seeds", "1", "2", "--epochs", "1", "--out", str(out),
                 "--config-dir", str(workdir / "cfgs")]) == 0
    printed = capsys.readouterr()
    assert ("warning: the report could not be rewritten now ([Errno 28] No space left on device); training goes on, "
            "and the call's end writes it again") in printed.err
    assert "[Tiny] done: 2 finished, 0 failed" in printed.out and "finished x2" in (out / "report" / "leaderboard.md").read_text()


@pytest.mark.parametrize("name", ["run_info.json", "test_metrics.json", "status.json"])
def test_report_names_a_damaged_json_file(tiny_dataset, workdir, capsys, name):
    configs = workdir / "cfgs"
    configs.mkdir()
    write_config(configs, STID_TINY, "Good_Tiny.py")
    run_leaderboard(Budget(dataset="Tiny", models=["Good"], seeds=[1], epochs=1, patience=1, config_dir=str(configs)),
                    workdir / "lb", echo=lambda s: None)
    damaged = workdir / "lb" / "Good" / "seed-1" / name
    damaged.write_text(damaged.read_text()[:20])
    assert main(["report", "--dataset", "Tiny", "--out", str(workdir / "lb")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {damaged} is not valid JSON (") and err.strip().endswith(
        "it was damaged or cut short. Restore it, or delete that run folder to train the run again.")


def test_leaderboard_errors(workdir, capsys):
    with pytest.raises(UserError, match="write MODEL:KEY=VALUE"):
        _overrides(["vfm_layers=2"], ["STVFM"])
    with pytest.raises(UserError, match=r"GWNet is not among --models \(STVFM\) nor the model of one of their ablation"):
        _overrides(["GWNet:num_epochs=2"], ["STVFM"])
    assert _overrides(["all:num_epochs=2"], ["A", "B"]) == {"A": ["num_epochs=2"], "B": ["num_epochs=2"]}
    assert main(["run", "--dataset", "Synth8n7d5m", "--models", "STID", "--config-dir", str(workdir)]) == 2
    assert f"No model 'STID': no config {workdir / 'STID.py'} (known: STVFM, " in capsys.readouterr().err
    assert main(["run", "--dataset", "Tiny", "--epochs", "0"]) == 2
    assert "--epochs 0: give at least 1" in capsys.readouterr().err
    assert main(["run", "--dataset", "Tiny", "--budget", "equal-epochs", "--skip-seeds-after-cap"]) == 2
    assert ("--skip-seeds-after-cap needs --budget convergence: the equal-epochs budget has no time cap."
            in capsys.readouterr().err)


@pytest.mark.parametrize("case", reliability.LEADERBOARD, ids=lambda c: " ".join(c.args))
def test_leaderboard_refuses_bad_rows_before_any_folder(tiny_dataset, workdir, capsys, case):
    (workdir / "baselines_cfg").mkdir()
    write_config(workdir / "baselines_cfg", STID_TINY, "STID.py")
    (workdir / "notes.txt").write_text("mine")
    assert main(reliability.LEADERBOARD_BASE.split()[3:] + list(case.args)) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == f"error: {case.message}" and "Traceback" not in err
    assert not (workdir / "leaderboard").exists() and (workdir / "notes.txt").read_text() == "mine"
    assert case.disk == "nothing: no leaderboard folder"


def test_ablation_rows_become_overrides_of_their_model():
    from stvfm_plugin.leaderboard.runs import split_variant, train_command

    assert split_variant("STVFM:vfm_layers=0,optimizer_params.lr=1e-4") == (
        "STVFM", ["model_config.vfm_layers=0", "optimizer_params.lr=1e-4"])
    assert split_variant("STVFM:lr_scheduler_params.milestones=[25,50],dropout=0.1") == (
        "STVFM", ["lr_scheduler_params.milestones=[25,50]", "model_config.dropout=0.1"])  # a list keeps its commas
    budget = Budget(dataset="LosLoop", models=["STVFM:pretrained=False"], seeds=[1], epochs=5, patience=2)
    command = train_command(budget, "STVFM:pretrained=False", 1, Path("lb/STVFM@pretrained=False/seed-1"), "cpu", False)
    assert command[command.index("-c") + 1] == str(Path("baselines_cfg") / "STVFM.py")
    assert command[-2:] == ["--set", "model_config.pretrained=False"]
    # an ablation row is its model with the model's own overrides, changed (here: the LM and its depth kept)
    rows = ["GPT4TS", "GPT4TS:llm_layers=0"]
    budget = Budget(dataset="LosLoop", models=rows, seeds=[1], epochs=5, patience=2, overrides=_overrides(
        ["GPT4TS:model_config.backbone=all-minilm-l6-v2", "GPT4TS:model_config.llm_layers=2"], rows))
    command = train_command(budget, rows[1], 1, Path("lb/x/seed-1"), "cpu", False)
    assert [command[i + 1] for i, a in enumerate(command) if a == "--set"][1:] == [
        "model_config.backbone=all-minilm-l6-v2", "model_config.llm_layers=2", "model_config.llm_layers=0"]
    assert _overrides(["GPT4TS:num_epochs=2"], ["GPT4TS:pretrained=False"]) == {"GPT4TS": ["num_epochs=2"]}
    with pytest.raises(UserError, match="write an ablation as MODEL:key=value"):
        split_variant("STVFM:nothing")


def test_a_few_shot_row_trains_its_model_on_the_most_recent_share():
    from stvfm_plugin.leaderboard.runs import run_options_of, split_variant, train_command

    assert split_variant("STID:train_fraction=0.1") == ("STID", [])  # an option of the run, not a config entry
    assert split_variant("STVFM:pretrained=False,train_fraction=0.25") == ("STVFM", ["model_config.pretrained=False"])
    assert run_options_of("STVFM:pretrained=False,train_fraction=0.25") == ["--train-fraction", "0.25"]
    assert run_options_of("STVFM:pretrained=False") == []
    rows = ["STVFM", "STVFM:train_fraction=0.1"]
    budget = Budget(dataset="LosLoop", models=rows, seeds=[1], epochs=5, patience=2, config_dir=str(REPO / "baselines_cfg"),
                    overrides=_overrides(["STVFM:model_config.vfm_layers=1"], rows))
    command = train_command_of(budget, rows[1])  # the config takes every override: no train_fraction among them
    assert command[command.index("--train-fraction") + 1] == "0.1"
    assert [command[i + 1] for i, a in enumerate(command) if a == "--set"][1:] == ["model_config.vfm_layers=1"]
    resumed = train_command(budget, rows[1], 1, Path("x"), "cpu", True)
    assert resumed[-3:] == ["--train-fraction", "0.1", "--resume"]


def test_forecast_sample_is_the_evening_rush_of_the_first_test_day(tmp_path):
    import numpy as np

    from stvfm_plugin.leaderboard.collect import forecast_sample

    results = tmp_path / "test_results"
    results.mkdir()
    truth = np.random.default_rng(0).normal(size=(400, 12, 5))
    truth[..., 3] *= 10  # the busiest sensor
    np.save(results / "targets.npy", truth)
    np.save(results / "prediction.npy", truth + 1)
    meta = {"start_time": "2012-03-01T00:00:00", "frequency (minutes)": 5,
            "split_lengths": {"train": 1209, "val": 403, "test": 404}}
    sample = forecast_sample(tmp_path, meta, {"dataset_params": {"input_len": 12}})
    # window 0 predicts step 1209 + 403 + 12 + 2 = 1626 (day 5, 15:30) at horizon 3; the rush ends at 20:00
    assert sample["horizon"] == 3 and sample["times"][0] == "2012-03-06T15:30" and sample["times"][-1] == "2012-03-06T19:55"
    assert len(sample["times"]) == 54 and sample["sensors"][0] == 3 and len(sample["sensors"]) == 3
    assert np.allclose(np.array(sample["prediction"]) - np.array(sample["truth"]), 1, atol=2e-3)


def test_cost_table_is_generated_from_committed_summaries(fixture_leaderboard, tmp_path):
    write_report(fixture_leaderboard, tmp_path / "Fix")
    readme = tmp_path / "README.md"
    readme.write_text("# x\n\n<!-- cost table: generated by python -m stvfm_plugin.leaderboard costs -->\n"
                      "<!-- end of cost table -->\n")
    assert main(["costs", str(tmp_path / "Fix"), "--write", str(readme)]) == 0
    text = readme.read_text()
    assert "| Model | Fix |" in text and "| Big | 0.4 / 2/2 / 11.0 |" in text and "| Broken | — |" in text
    assert "| Slow | 0.4 / 2/2 / 11.0 (not converged) |" in text
    assert "| **all runs (core-hours of training)** | **0.05** |" in text  # 8 trained runs x 22 s
    (tmp_path / "nomarkers.md").write_text("# no table here\n")
    assert main(["costs", str(tmp_path / "Fix"), "--write", str(tmp_path / "nomarkers.md")]) == 2
    assert (tmp_path / "nomarkers.md").read_text() == "# no table here\n"


def test_every_row_of_the_committed_leaderboard_script_is_a_valid_config():
    """A misspelt ablation key or override in benchmarks/leaderboard.sh would cost hours before its run fails."""
    text = "\n".join(line for line in (REPO / "benchmarks" / "leaderboard.sh").read_text().splitlines()
                     if not line.lstrip().startswith("#"))
    ablations = [row for group in re.findall(r'_ABLATIONS="([^"]*)"', text) for row in group.split()]
    orders = [[m for m in group.split() if not m.startswith("$")] for group in re.findall(r'MODELS="([^"]*)"', text)]
    assert len(orders) == 3 and len(orders[2]) == 11  # the grid on a CPU, what a GPU adds there, the road sets: all
    grid = orders[0] + orders[1]
    assert set(orders[2]) - set(grid) == {"StemGNN"} and set(grid) <= set(orders[2])  # the grid: all but one
    assert "--models $MODELS" in text
    assert "STVFM:pretrained=False" in ablations and "GPT4TS:llm_layers=0" in ablations
    rows = orders[2] + ablations
    budget = Budget(dataset="LosLoop", models=rows, seeds=[1], epochs=1, patience=1, config_dir=str(REPO / "baselines_cfg"),
                    overrides=_overrides(re.findall(r"--set ([A-Za-z]\S*)", text), rows))
    for row in rows:
        train_command_of(budget, row)


@pytest.mark.parametrize("gpus", ["", "cpu", "0"])
def test_the_grid_leaves_out_on_a_cpu_the_models_it_cannot_train_there_and_trains_them_on_a_gpu(gpus):
    """leaderboard.sh's choice of the grid's rows, run on its own (nothing trained)."""
    script = (REPO / "benchmarks" / "leaderboard.sh").read_text()
    block = script[script.index("\nLEAVE_OUT=()"):script.index("\n# ROWS (benchmarks/few_shot.sh)")]
    head = (f"set -euo pipefail\nDATASET=TaxiNYC\nREFERENCES='SeasonalWeek'\nFIRST_ABLATIONS='STVFM:vfm_layers=0'\n"
            + (f"GPUS={gpus}\n" if gpus else ""))
    proc = subprocess.run(["bash", "-c", head + block + '\necho "$MODELS"\nprintf "%s\\n" "${LEAVE_OUT[@]}"'],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    models, *leave_out = proc.stdout.splitlines()
    left = {item.split("=", 1)[0]: item.split("=", 1)[1] for item in leave_out if item != "--leave-out"}
    on_gpu = gpus == "0"
    assert set(left) == ({"StemGNN"} if on_gpu else {"StemGNN", "GWNet", "GPT4TS"})
    assert models.split()[-2:] == (["GWNet", "GPT4TS"] if on_gpu else ["DeepAR", "PatchTST"])
    assert set(models.split()) | set(left) >= {"STID", "DLinear", "NHiTS", "STLLM", "iTransformer", "STVFM", "DeepAR",
                                               "PatchTST", "GWNet", "GPT4TS", "StemGNN"}
    if not on_gpu:
        assert "passed 16 GB" in left["GWNet"] and "results/cost/TaxiNYC.md" in left["GPT4TS"]


@pytest.mark.parametrize("models, expected", [
    ("STID GPT4TS:train_fraction=0.1 NHiTS", ["GPT4TS:model_config.backbone=all-minilm-l6-v2",
                                             "GPT4TS:model_config.llm_layers=2"]),
    ("STID STLLM", ["STLLM:model_config.backbone=all-minilm-l6-v2", "STLLM:model_config.llm_layers=2",
                    "STLLM:model_config.unfrozen_layers=1"]),
    ("STID NHiTS", []),
])
def test_the_script_passes_a_models_settings_only_when_one_of_its_rows_is_in_the_call(models, expected):
    """The leaderboard refuses a --set for a model with no row (a typo's guard); a grid call on a CPU leaves GPT4TS
    out, and the few-shot calls name few models."""
    script = (REPO / "benchmarks" / "leaderboard.sh").read_text()
    block = script[script.index("\nMODEL_SETS=("):script.index("\n# shellcheck disable=SC2086  # the model lists")]
    proc = subprocess.run(["bash", "-c", f"set -euo pipefail\nMODELS='{models}'\n" + block
                           + '\nprintf "%s\\n" "${SETS[@]}"'], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert [line for line in proc.stdout.splitlines() if line and line != "--set"] == expected


def _grid_choice(tmp_path: Path, choice, rows: str = "") -> subprocess.CompletedProcess:
    """leaderboard.sh's block that hands the grid tuning's choice to ST-VFM's rows, run on its own (nothing trained)."""
    script = (REPO / "benchmarks" / "leaderboard.sh").read_text()
    block = script[script.index("\nMODELS=${ROWS:-$MODELS}"):script.index("\n# shellcheck disable=SC2086")]
    if choice is not None:
        (tmp_path / "benchmarks" / "results" / "tune" / "TaxiNYC").mkdir(parents=True, exist_ok=True)
        (tmp_path / "benchmarks" / "results" / "tune" / "TaxiNYC" / "chosen.txt").write_text(choice)
    head = (f"set -euo pipefail\nREPO={tmp_path}\nDATASET=TaxiNYC\nFIRST_ABLATIONS='STVFM:pretrained=False "
            f"STVFM:vfm_layers=0'\nMODELS=\"STID iTransformer STVFM $FIRST_ABLATIONS\"\nROWS='{rows}'\n")
    return subprocess.run(["bash", "-c", head + block + '\necho "$MODELS"\necho "${CHOSEN[*]:-}"'], capture_output=True,
                          text=True, timeout=60)


@pytest.mark.parametrize("choice", [None, "", "# chosen on validation\nmodel_config.patch_size=2"])
def test_the_grids_st_vfm_rows_wait_for_the_tunings_committed_choice_and_train_with_it(tmp_path, choice):
    proc = _grid_choice(tmp_path, choice)
    assert proc.returncode == 0, proc.stderr
    *said, models, chosen = proc.stdout.splitlines()
    if choice is None:
        assert models.split() == ["STID", "iTransformer"] and chosen == ""
        assert "ST-VFM's rows wait for the tuning's choice" in said[0]
        return
    assert models.split() == ["STID", "iTransformer", "STVFM", "STVFM:pretrained=False", "STVFM:vfm_layers=0"]
    assert chosen == ("--set STVFM:model_config.patch_size=2" if choice else "")
    rows = models.split()
    budget = Budget(dataset="LosLoop", models=rows, seeds=[1], epochs=1, patience=1, config_dir=str(REPO / "baselines_cfg"),
                    overrides=_overrides(chosen.split()[1::2], rows))
    for row in rows[2:]:  # the full model and its ablations alike
        command = train_command_of(budget, row)
        assert ("model_config.patch_size=2" in command) == bool(choice)


def test_the_grids_few_shot_st_vfm_rows_take_the_same_choice_and_are_refused_without_it(tmp_path):
    rows = "STVFM:train_fraction=0.1 STID:train_fraction=0.1"
    refused = _grid_choice(tmp_path, None, rows)
    assert refused.returncode == 2
    assert "error: ST-VFM's rows on TaxiNYC need the tuning's choice, benchmarks/results/tune/TaxiNYC/chosen.txt" \
        in refused.stderr
    without = _grid_choice(tmp_path, None, "STID:train_fraction=0.1")  # no ST-VFM row: nothing asked
    assert without.returncode == 0 and without.stdout.splitlines() == ["STID:train_fraction=0.1", ""]
    taken = _grid_choice(tmp_path, "model_config.patch_size=2", rows)
    assert taken.returncode == 0 and taken.stdout.splitlines()[-2:] == [rows, "--set STVFM:model_config.patch_size=2"]


def _tune_rows(stage: str, **env: str) -> list[str]:
    """The candidate rows of benchmarks/tune.sh in `stage`, from the script's own shell code (nothing trained)."""
    script = (REPO / "benchmarks" / "tune.sh").read_text()
    block = script[script.index("\nBEFORE="):script.index("\nesac\n") + len("\nesac\n")]
    proc = subprocess.run(["bash", "-c", f"set -eu\nSTAGE={stage}\n{block}\necho $CANDIDATES"],
                          env={**os.environ, **env}, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()


def test_every_row_of_the_tuning_script_is_a_valid_config_named_as_the_committed_tuning_folders_name_it():
    """A row tune.sh names otherwise than the committed summaries (e.g. after a relabel) would be trained again."""
    from stvfm_plugin.leaderboard.summaries import read_summaries

    stage_a = _tune_rows("a")
    stage_b = _tune_rows("b", B1="", B2="train_backbone_norms=False,use_flow_branch=False,use_cross_prompt=False,"
                                         "flow_loss_weight=0")  # as stage b ran (benchmarks/README.md)
    assert len(stage_a) == 7 and "STVFM" in stage_a and stage_b[:2] == ["STVFM:pretrained=False", "STVFM:vfm_layers=0"]
    assert stage_b[3] == ("STVFM:train_backbone_norms=False,use_flow_branch=False,use_cross_prompt=False,"
                          "flow_loss_weight=0,vfm_layers=0")
    grid = _tune_rows("grid")
    assert grid == ["STVFM", "STVFM:patch_size=2", "STVFM:patch_size=4", "STVFM:patch_size=1",
                    "STVFM:center_tokens=True"]
    budget = Budget(dataset="LosLoop", models=stage_a + stage_b + grid[1:], seeds=[1], epochs=1, patience=1,
                    config_dir=str(REPO / "baselines_cfg"))
    for row in budget.models:
        train_command_of(budget, row)
    for dataset, rows in (("LosLoop", stage_a + stage_b), ("SZTaxi", stage_a)):  # stage a is complete on both
        committed = {row.model for row in read_summaries(REPO / "benchmarks" / "results" / "tune" / dataset)[1]}
        assert set(rows) <= committed, sorted(set(rows) - committed)


def train_command_of(budget: Budget, row: str) -> list[str]:
    """The command that would train `row`, after checking that its config takes every override."""
    from stvfm_plugin.config_tools import apply_overrides, load_config, parse_override
    from stvfm_plugin.leaderboard.runs import train_command

    command = train_command(budget, row, 1, Path("x"), "cpu", False)
    cfg = load_config(Path(command[command.index("-c") + 1]))
    apply_overrides(cfg, [parse_override(command[i + 1]) for i, arg in enumerate(command) if arg == "--set"])
    return command


def test_a_run_capped_under_a_smaller_cap_resumes_and_trains_on_under_a_larger_one(tiny_dataset, workdir):
    configs = workdir / "cfgs"
    configs.mkdir()
    write_config(configs, STID_TINY.replace("num_epochs=2", "num_epochs=4"), "STID.py")
    folder = workdir / "lb" / "STID" / "seed-1"
    budget = dict(dataset="Tiny", models=["STID"], seeds=[1], epochs=4, patience=0, config_dir=str(configs),
                  threads=1)
    lines: list[str] = []
    run_leaderboard(Budget(max_minutes=0.0001, **budget), workdir / "lb", echo=lines.append)
    capped = json.loads((folder / "status.json").read_text())
    assert (capped["stop_reason"], capped["epoch"], capped["converged"]) == ("time cap", 1, False)
    run_leaderboard(Budget(max_minutes=60, **budget), workdir / "lb", echo=lines.append)
    assert any("STID seed 1: resuming" in line for line in lines)
    status = json.loads((folder / "status.json").read_text())
    assert (status["state"], status["stop_reason"], status["epoch"], status["converged"]) == (
        "finished", "max epochs", 4, True)
    assert json.loads((folder / "run_info.json").read_text())["epochs_run"] == 4


# ---- relabel: a model's config file changed ---------------------------------------------------
def _relabel_fixture(tmp_path, models):
    out = tmp_path / "lb"
    out.mkdir()
    budget = {"dataset": "Fix", "models": models, "seeds": [1, 2], "epochs": 3, "patience": 2, "max_minutes": 30,
              "kind": "convergence", "overrides": {}, "config_dir": "cfg"}
    (out / "leaderboard.json").write_text(json.dumps({"budget": budget, "software": {"torch": "x"}, "device": "cpu",
                                                      "dataset_meta": {}}))
    for k, model in enumerate(models):
        fake_run(out, model, 1, 3.0 + k)
        fake_run(out, model, 2, 3.1 + k)
    (out / "started.json").write_text(json.dumps({f"{m}/1": "2026-12-05 08:00:00" for m in models}))
    write_report(out, tmp_path / "report")
    config_dir = tmp_path / "cfg"
    config_dir.mkdir()
    write_config(config_dir, STID_TINY, "M.py")  # the new config: num_layers=1 (the old one had 3)
    return out, tmp_path / "report", config_dir


def test_relabel_renames_a_models_rows_to_what_they_are_under_its_new_config(tmp_path, capsys):
    out, report, config_dir = _relabel_fixture(tmp_path, ["M", "M:num_layers=1", "M:input_hidden_size=16", "Other"])
    started = out / "M@input_hidden_size=8" / "seed-1"  # a row started after the report was written: no summary yet
    started.mkdir(parents=True)
    (started / "status.json").write_text(json.dumps({"state": "running", "epoch": 2}))
    settings = json.loads((out / "leaderboard.json").read_text())
    settings["budget"]["models"].append("M:input_hidden_size=8")
    (out / "leaderboard.json").write_text(json.dumps(settings))
    assert main(["relabel", "--report-dir", str(report), "--model", "M", "--as", "num_layers=3", "--out", str(out),
                 "--config-dir", str(config_dir)]) == 0
    assert (out / "M@num_layers=3,input_hidden_size=8" / "seed-1" / "status.json").is_file()  # renamed too
    assert "M:num_layers=3,input_hidden_size=8" in json.loads((out / "leaderboard.json").read_text())["budget"]["models"]
    said = capsys.readouterr().out
    assert "M -> M:num_layers=3" in said and "M:num_layers=1 -> M" in said
    assert "M:input_hidden_size=16 -> M:num_layers=3,input_hidden_size=16" in said
    found = {p.parent.name: json.loads(p.read_text()) for p in (report / "runs").glob("*/seed-1.json")}
    assert {folder: s["model"] for folder, s in found.items()} == {
        "M@num_layers=3": "M:num_layers=3", "M": "M", "M@num_layers=3,input_hidden_size=16":
            "M:num_layers=3,input_hidden_size=16", "Other": "Other"}
    # each row's runs moved with it: the new M is the old M:num_layers=1 (MAE 4.0), the old M is an ablation now
    assert found["M"]["metrics"]["overall"]["MAE"] == pytest.approx(4.0)
    assert found["M@num_layers=3"]["metrics"]["overall"]["MAE"] == pytest.approx(3.0)
    settings = json.loads((report / "settings.json").read_text())
    assert settings["budget"]["models"] == ["M:num_layers=3", "M", "M:num_layers=3,input_hidden_size=16", "Other"]
    assert sorted(json.loads((out / "started.json").read_text())) == [
        "M/1", "M:num_layers=3,input_hidden_size=16/1", "M:num_layers=3/1", "Other/1"]
    assert (out / "M@num_layers=3" / "seed-2" / "test_metrics.json").is_file() and not list(out.glob("*.relabel"))
    md = write_report(out, report)[0].read_text()  # the report rebuilt under the new names
    assert "| M:num_layers=3 | 2 |" in md and "| M:num_layers=3,input_hidden_size=16 | 2 |" in md
    # the old config against the new one; the old ablation against the old config it changed one thing of
    assert "| M:num_layers=3 | 2 | 3.050 ± 0.071 |" in md and "| -1.000 (-24.7 %) | yes |" in md
    assert "| +2.000 (+65.6 %) against M:num_layers=3 | yes |" in md
    assert ('The rows whose change is "against M:num_layers=3" were trained as ablations of an earlier config of the '
            "model, `M:num_layers=3` (renamed by `relabel`), so they are compared with that row, not with the current "
            "full model.") in md
    assert "- M's config (M.py) changed after some of its runs: the rows its earlier version trained were renamed to " \
        "what they are under the new one (the earlier config is `M:num_layers=3`)" in md
    again = tmp_path / "fresh"
    shutil.copytree(report, again)
    assert write_report(None, again)[0].read_text() == md  # and from its summaries alone
    # no old row was the new config: until it trains, the old rows stay in the Ablations with nothing to compare
    shutil.rmtree(again / "runs" / "M")
    md = write_report(None, again)[0].read_text()
    assert "| M:num_layers=3 | 2 | 3.050 ± 0.071 |" in md and "| — (the full model has no run yet) | — |" in md
    assert "| +2.000 (+65.6 %) against M:num_layers=3 | yes |" in md
    assert main(["relabel", "--report-dir", str(report), "--model", "M", "--as", "num_layers=3", "--out", str(out),
                 "--config-dir", str(config_dir)]) == 2  # twice would rename the new config's rows as the old one's
    assert "the rows of M were already renamed with --as num_layers=3" in capsys.readouterr().err


@pytest.mark.parametrize("models,old,message", [
    (["M", "Other"], "num_layers=1", "--as num_layers=1: already the value in"),
    (["M", "M:num_layers=3"], "num_layers=3", "would merge rows into M:num_layers=3"),
    (["Other"], "num_layers=3", "No row of M here"),
    (["M"], ",", "--as is empty"),
    (["M"], "no_such_field=1", "STIDConfig has no field 'no_such_field'"),
])
def test_relabel_errors(tmp_path, capsys, models, old, message):
    out, report, config_dir = _relabel_fixture(tmp_path, models)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert main(["relabel", "--report-dir", str(report), "--model", "M", "--as", old, "--out", str(out),
                 "--config-dir", str(config_dir)]) == 2
    assert message in capsys.readouterr().err
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before  # nothing renamed


def test_runs_of_a_changed_config_are_refused_then_relabelled_and_kept(tiny_dataset, workdir):
    configs = workdir / "cfgs"
    configs.mkdir()
    write_config(configs, STID_TINY, "STID_Tiny.py")

    def tune(*models: str) -> subprocess.CompletedProcess:
        return subprocess.run([python(), "-m", "stvfm_plugin.leaderboard", "tune", "--dataset", "Tiny", "--models",
                               *models, "--epochs", "1", "--seeds", "1", "--config-dir", str(configs),
                               "--report-dir", "kept"], capture_output=True, text=True, timeout=600)

    assert tune("STID", "STID:num_layers=2").returncode == 0
    write_config(configs, STID_TINY.replace("num_layers=1", "num_layers=2"), "STID_Tiny.py")  # the tuned default
    for where in ("folder", "summary"):  # the run folder; then, in a fresh checkout, the committed summary
        proc = tune("STID", "STID:num_layers=2")
        assert proc.returncode == 2, proc.stdout[-2000:]
        assert "would be kept as those rows: STID seed 1 (" in proc.stderr
        assert "model_config.num_layers 1 then, 2 now" in proc.stderr and "relabel --report-dir kept --model STID" \
            in proc.stderr
        assert "STID:num_layers=2 seed 1" not in proc.stderr  # that row's runs are what it says
        if where == "folder":
            shutil.copytree(workdir / "tune", workdir / "tune-kept")
            shutil.rmtree(workdir / "tune")
    shutil.rmtree(workdir / "tune")  # (the refused call made the folder for its lock)
    shutil.move(workdir / "tune-kept", workdir / "tune")
    relabel = subprocess.run([python(), "-m", "stvfm_plugin.leaderboard", "relabel", "--report-dir", "kept", "--model",
                              "STID", "--as", "num_layers=1", "--out", "tune/Tiny", "--config-dir", str(configs)],
                             capture_output=True, text=True, timeout=300)
    assert relabel.returncode == 0, relabel.stderr
    assert "STID -> STID:num_layers=1" in relabel.stdout and "STID:num_layers=2 -> STID" in relabel.stdout
    proc = tune("STID", "STID:num_layers=1")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.count("already finished, skipped") == 2  # both kept under their new names, nothing trained
    assert "| STID:num_layers=1 | 1 |" in (workdir / "kept" / "tune.md").read_text()


def test_relabel_takes_the_old_settings_as_one_even_when_one_alone_would_be_refused(tmp_path):
    from stvfm_plugin.leaderboard.relabel import relabel_plan

    config = write_config(tmp_path, 'from stvfm_plugin.baselines import baseline_config\n\nCFG = baseline_config("STVFM")\n'
                          "CFG.model_config.use_flow_branch = False\nCFG.model_config.use_cross_prompt = False\n"
                          "CFG.model_config.flow_loss_weight = 0.0\n", "STVFM.py")  # use_cross_prompt=True alone: refused
    plan = relabel_plan(["STVFM", "STVFM:flow_loss_weight=0", "STVFM:use_flow_branch=False,use_cross_prompt=False,"
                         "flow_loss_weight=0", "STID"], "STVFM", "use_flow_branch=True,use_cross_prompt=True,"
                        "flow_loss_weight=0.5", config)
    assert plan == {"STVFM": "STVFM:use_flow_branch=True,use_cross_prompt=True,flow_loss_weight=0.5",
                    "STVFM:flow_loss_weight=0": "STVFM:use_flow_branch=True,use_cross_prompt=True",  # 0 is 0.0
                    "STVFM:use_flow_branch=False,use_cross_prompt=False,flow_loss_weight=0": "STVFM"}
    with pytest.raises(UserError, match="use_cross_prompt=True needs use_flow_branch=True"):
        relabel_plan(["STVFM"], "STVFM", "use_cross_prompt=True", config)  # an old config that cannot have been


@pytest.mark.parametrize("edit, message", [
    ({"metrics": {"overall": {"MAE": -1}}}, "its metrics overall MAE is -1; a finished run's metrics are finite numbers"),
    ({"metrics": {"overall": {"MAE": float("nan")}}}, "its metrics overall MAE is nan; a finished run's metrics"),
    ({"metrics": {"overall": {"MAE": "abc"}}}, "its metrics overall MAE is 'abc'; a finished run's metrics"),
    ({"metrics": "abc"}, "its metrics is str, not an object"),
    ({"seed": "one"}, "its seed is 'one', not a whole number of 0 or more"),
    ({"state": "great"}, "unknown run state 'great'"),
    ({"info": {"best_metrics": {"val/MAE": -3}}}, "its metrics best validation val/MAE is -3"),
])
def test_a_hand_edited_or_damaged_summary_never_ranks(fixture_leaderboard, tmp_path, capsys, edit, message):
    report = tmp_path / "committed"
    write_report(fixture_leaderboard, report)
    path = report / "runs" / "Small" / "seed-1.json"
    summary = json.loads(path.read_text())
    path.write_text(json.dumps({**summary, **edit}))
    before = {p: p.read_bytes() for p in report.rglob("*") if p.is_file()}
    assert main(["report", "--dataset", "Fix", "--out", str(tmp_path / "absent"), "--report-dir", str(report)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and "Small/seed-1.json" in err
    assert {p: p.read_bytes() for p in report.rglob("*") if p.is_file()} == before  # the report as it was


def test_history_week_reaches_every_row_and_reference_and_splits_leaderboards(tmp_path):
    from stvfm_plugin.leaderboard.runs import train_command
    from stvfm_plugin.leaderboard.summaries import _check_same_leaderboard

    budget = Budget(dataset="D", models=["STID", "SeasonalWeek"], seeds=[1], epochs=3, patience=2, history="week")
    for row in budget.models:
        command = train_command(budget, row, 1, tmp_path / row, "cpu", False)
        assert command[command.index("--history") + 1] == "week"
    earlier = {"budget": {"dataset": "D", "kind": "convergence", "epochs": 3, "patience": 2}}  # before --history
    _check_same_leaderboard({"budget": {**earlier["budget"], "history": "recent"}}, earlier, tmp_path)  # the same
    with pytest.raises(UserError, match="history 'recent' there, 'week' here"):
        _check_same_leaderboard({"budget": {**earlier["budget"], "history": "week"}}, earlier, tmp_path)


def test_a_budget_of_epochs_and_patience_alone_has_no_time_cap(tmp_path):
    from stvfm_plugin.leaderboard.cli import _budget, build_parser
    from stvfm_plugin.leaderboard.runs import train_command

    args = build_parser().parse_args(["run", "--dataset", "D", "--models", "STID", "--max-minutes", "none",
                                      "--history", "week"])
    budget = _budget(args)
    assert budget.max_minutes is None and budget.history == "week"
    command = train_command(budget, "STID", 1, tmp_path / "STID", "cpu", False)
    assert "--max-minutes" not in command and "--patience" in command
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "--dataset", "D", "--max-minutes", "soon"])


def test_a_report_of_several_channels_has_a_per_channel_table_and_one_of_one_channel_none():
    from stvfm_plugin.leaderboard.markdown import per_channel_table

    def run(seed, start, end):
        metrics = {"overall": {"MAE": (start + end) / 2, "RMSE": 1.0, "MAPE": 0.1},
                   "channel_start": {"MAE": start, "RMSE": 2.0, "MAPE": float("nan")},
                   "channel_end": {"MAE": end, "RMSE": 3.0, "MAPE": 0.2}}
        return SeedRun(seed, "finished", metrics, {"epochs_run": 5, "stop_reason": "early stopping"})

    lines = per_channel_table([ModelRow("STID", [run(1, 10.0, 12.0), run(2, 11.0, 13.0)])])
    assert lines[1] == "## Per channel (all metrics)"
    assert lines[5] == "| Model | MAE end | RMSE end | MAPE % end | MAE start | RMSE start | MAPE % start |"
    assert lines[7] == ("| STID | 12.500 ± 0.707 | 3.000 ± 0.000 | 20.000 ± 0.000 | 10.500 ± 0.707 | 2.000 ± 0.000 | "
                        "— |")
    assert per_channel_table([_validated_row("M", 3.0)]) == []


def test_a_mape_without_any_target_to_divide_by_is_no_damage(tmp_path):
    from stvfm_plugin.leaderboard.summaries import check_summary

    summary = {"seed": 1, "state": "finished", "metrics": {"overall": {"MAE": 1.0, "RMSE": 2.0, "MAPE": float("nan")}}}
    check_summary(tmp_path / "seed-1.json", summary)  # accepted: MAPE is not ranked on
    with pytest.raises(UserError, match="its metrics overall RMSE is nan"):
        check_summary(tmp_path / "seed-1.json", {**summary, "metrics": {"overall": {"MAE": 1.0, "RMSE": float("nan")}}})


@pytest.mark.parametrize("history", ["week", "week-residual", "weeks-residual"])
def test_a_week_of_history_trains_once_and_a_second_call_keeps_its_runs(workdir, history):
    from stvfm_plugin.data.synth import SynthOptions, synth_dataset

    weeks = 16 if history == "weeks-residual" else 6  # each split holds a window of three weeks and 12 steps
    synth_dataset(workdir / "datasets", "Hourly", SynthOptions(num_nodes=4, num_steps=24 * 7 * weeks, step_minutes=60,
                                                              seed=1))
    reference = "SeasonalMedian" if history == "weeks-residual" else "SeasonalWeek"
    command = [python(), "-m", "stvfm_plugin.leaderboard", "run", "--dataset", "Hourly", "--models", "STID",
               "PatchTST", "NHiTS", reference, "--epochs", "1", "--patience", "3", "--seeds", "1", "--history", history, "--threads",
               "1", "--max-minutes", "none", "--config-dir", str(REPO / "baselines_cfg")]
    first = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    cfg = json.loads((workdir / "leaderboard" / "Hourly" / "STID" / "seed-1" / "cfg.json").read_text())
    assert cfg["model_config"]["input_len"] == 168
    again = subprocess.run(command, capture_output=True, text=True, timeout=600)  # nothing stale: the same week in
    assert again.returncode == 0, again.stderr[-3000:]
    assert "STID seed 1: finished before, skipped" in again.stdout or "skipped" in again.stdout
    md = (workdir / "leaderboard" / "Hourly" / "report" / "leaderboard.md").read_text()
    if history == "weeks-residual":
        assert ("(`--history weeks-residual`: every row, the naive references' windows too, is given windows of 3 weeks, "
                "of which each model reads the last week" in md)
        assert ("every model forecasts the residual of the median of the same hours 1 to 3 weeks earlier: its output is "
                "added to that median, so a model that learns nothing scores as SeasonalMedian)" in md)
        assert cfg["dataset_params"]["input_len"] == 504 and cfg["residual_weeks"] == 3
    else:
        assert f"(`--history {history}`: every row, the naive references' windows too, reads a week of steps" in md
        assert ("every model forecasts the residual of that copy: its output is added to the readings of the same hours "
                "one week earlier, so a model that learns nothing scores as SeasonalWeek)" in md) == (history != "week")
    assert cfg.get("residual_lag") == (None if history == "week" else 168)
    assert (f"- Levels the models add back under `{history}`: NHiTS: the last reading; PatchTST: the window's mean "
            "(RevIN). Such a model" in md) == (history != "week")
    assert ("still scores as " + reference in md) == (history != "week")


def test_few_shot_rows_get_their_table_and_figure_against_the_full_data_row(fixture_leaderboard, tmp_path):
    from stvfm_plugin.leaderboard.few_shot import at_full_data, fraction_of

    assert fraction_of("Big:vfm_layers=0,train_fraction=0.25") == 0.25 and fraction_of("Big:vfm_layers=0") is None
    assert at_full_data("Big:vfm_layers=0,train_fraction=0.25") == "Big:vfm_layers=0"
    assert at_full_data("Big:train_fraction=0.1") == "Big"
    out = fixture_leaderboard
    settings = json.loads((out / "leaderboard.json").read_text())
    settings["budget"]["models"] += ["Big:train_fraction=0.1", "Big:train_fraction=0.25", "Small:train_fraction=0.1"]
    (out / "leaderboard.json").write_text(json.dumps(settings))
    for seed, mae in ((1, 4.0), (2, 4.4)):
        fake_run(out, "Big:train_fraction=0.1", seed, mae)
        info = out / "Big@train_fraction=0.1" / f"seed-{seed}" / "run_info.json"
        info.write_text(json.dumps(json.loads(info.read_text()) | {"train_fraction": 0.1, "train_windows": 120}))
    fake_run(out, "Big:train_fraction=0.25", 1, 3.7)
    fake_run(out, "Small:train_fraction=0.1", 1, 5.0)
    report = tmp_path / "report"
    paths = write_report(out, report)
    assert report / "few_shot.png" in paths and (report / "few_shot.png").stat().st_size > 10_000
    text = (report / "leaderboard.md").read_text()
    section = text.split("## Few-shot: trained on the most recent share of the training split")[1].split("\n## ")[0]
    table = [line for line in section.splitlines() if line.startswith("| ")]
    assert table[0] == "| Row | 10 % | 25 % | 100 % |"
    assert table[1] == "| Big | 4.200 ± 0.283 (2), 120 windows | 3.700 (1) | 3.250 ± 0.354 (2) |"
    assert table[2] == "| Small | 5.000 (1) | — | 3.500 ± 0.141 (2) |"
    assert "- 10 %:" not in section  # no ST-VFM row: nothing to answer
    ablations = text.split("## Ablations")[1].split("\n## ")[0]
    assert "train_fraction" not in ablations and "Big:vfm_layers=0" in ablations  # not an ablation of its model
    again = tmp_path / "again"
    shutil.copytree(report, again)
    write_report(None, again)  # from the summaries alone: the same report
    assert (again / "leaderboard.md").read_text() == text


def test_a_report_without_few_shot_rows_has_no_such_section_or_figure(fixture_leaderboard, tmp_path):
    paths = write_report(fixture_leaderboard, tmp_path / "report")
    assert not any(p.name == "few_shot.png" for p in paths) and not (tmp_path / "report" / "few_shot.png").exists()
    assert "Few-shot" not in (tmp_path / "report" / "leaderboard.md").read_text()


def test_the_few_shot_section_answers_the_issue_in_plain_words():
    from stvfm_plugin.leaderboard.few_shot import few_shot_table
    from stvfm_plugin.leaderboard.rows import ModelRow, SeedRun

    def row(model: str, *maes: float) -> ModelRow:
        return ModelRow(model, [SeedRun(k, "finished", {"overall": {"MAE": m}}) for k, m in enumerate(maes, 1)])

    rows = [row("STID", 3.0, 3.1), row("STVFM", 3.2, 3.3), row("STVFM:pretrained=False", 3.3, 3.4),
            row("STVFM:train_fraction=0.1", 4.0, 4.1), row("STVFM:pretrained=False,train_fraction=0.1", 4.5, 4.6),
            row("STVFM:vfm_layers=0,train_fraction=0.1", 4.05, 4.2), row("STID:train_fraction=0.1", 4.6),
            row("STVFM:vfm_layers=0", 3.3, 3.35)]
    lines = few_shot_table(rows)
    assert "- 10 %: the pretrained backbone beats random yes and none no; ST-VFM beats STID: undecided." in lines
    assert "- 100 %: the pretrained backbone beats random yes and none yes; ST-VFM beats STID: no." in lines
    # a side behind that the epoch limit ended (patience unspent) is said, in its cell and after the answer
    rows[4].runs[0].info["stop_reason"] = "max epochs"  # random at 10 %: behind
    rows[3].runs[1].info["stop_reason"] = "max epochs"  # ST-VFM at 10 %: ahead of random, level with none
    lines = few_shot_table(rows)
    assert "| STVFM:pretrained=False | 4.550 ± 0.071 (2, 1 at the epoch limit) | 3.350 ± 0.071 (2) |" in lines
    assert "| STVFM | 4.050 ± 0.071 (2, 1 at the epoch limit) | 3.250 ± 0.071 (2) |" in lines
    assert ("- 10 %: the pretrained backbone beats random yes and none no; ST-VFM beats STID: undecided. Caveat: the "
            "epoch limit, not early stopping, ended STVFM:pretrained=False,train_fraction=0.1, the side behind, in 1 of 2 "
            "seeds (patience unspent: more epochs might close the gap), so this answer holds at this epoch budget "
            "only.") in lines  # ST-VFM is behind in no decided comparison: a cut-short run ahead only widens a gap


def test_every_few_shot_row_of_the_committed_script_is_a_valid_row():
    """benchmarks/few_shot.sh hands its rows to leaderboard.sh (ROWS): each must be a config that takes its overrides,
    or a naive reference, at 10 % first."""
    script = (REPO / "benchmarks" / "few_shot.sh").read_text()
    block = script[script.index("\nROWS=\"\""):script.index("\nROWS=$ROWS exec")]
    proc = subprocess.run(["bash", "-c", f"set -eu\nBEST=STLLM\n{block}\necho $ROWS"], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    rows = proc.stdout.split()
    assert rows[:7] == ["STVFM:train_fraction=0.1", "STVFM:pretrained=False,train_fraction=0.1",
                        "STVFM:vfm_layers=0,train_fraction=0.1", "STID:train_fraction=0.1", "STLLM:train_fraction=0.1",
                        "GPT4TS:train_fraction=0.1", "HistoricalMean:train_fraction=0.1"] and len(rows) == 14
    text = "\n".join(line for line in (REPO / "benchmarks" / "leaderboard.sh").read_text().splitlines()
                     if not line.lstrip().startswith("#"))
    assert "MODELS=${ROWS:-$MODELS}" in text
    budget = Budget(dataset="SZTaxi", models=rows, seeds=[1], epochs=1, patience=1, config_dir=str(REPO / "baselines_cfg"),
                    overrides=_overrides(re.findall(r"--set ([A-Za-z]\S*)", text), rows))
    from stvfm_plugin.leaderboard.runs import train_command

    for row in rows:  # a model's config takes every override; a reference has none
        command = (train_command(budget, row, 1, Path("x"), "cpu", False) if row.startswith("HistoricalMean")
                   else train_command_of(budget, row))
        assert command[command.index("--train-fraction") + 1] in ("0.1", "0.25")


def test_a_left_out_model_is_a_row_with_its_reason_that_no_call_trains_and_no_interim_line_waits_for(
        tiny_dataset, workdir, capsys):
    base = ["run", "--dataset", "Tiny", "--seeds", "1", "2", "--config-dir", str(REPO / "baselines_cfg"),
            "--report-dir", "report"]
    # an attempt cut short, in the report of an earlier call, then left out with the reason
    attempt = workdir / "leaderboard" / "Tiny" / "STID" / "seed-1"
    attempt.mkdir(parents=True)
    (attempt / "status.json").write_text(json.dumps({"state": "interrupted", "epoch": 1}))
    assert main(base + ["--models", "Persistence", "--epochs", "1"]) == 0
    assert "| — | STID |" in (workdir / "report" / "leaderboard.md").read_text()
    assert main(base + ["--models", "Persistence", "--epochs", "1", "--leave-out", "STID=one step takes 273 s"]) == 0
    assert "STID seed" not in capsys.readouterr().out  # never trained
    md = (workdir / "report" / "leaderboard.md").read_text()
    row = next(line for line in md.splitlines() if line.startswith("| — | STID |"))
    assert row.endswith("| left out: one step takes 273 s |")
    assert "STID (" not in md  # not among the rows "that do not have every seed yet"
    assert sorted(p.name for p in (workdir / "report" / "runs" / "STID").iterdir()) == ["seed-0.json"]
    summary = json.loads((workdir / "report" / "runs" / "STID" / "seed-0.json").read_text())
    assert summary["state"] == "left out" and summary["error"] == "one step takes 273 s"
    # a later call without the option keeps the row left out, and the report rebuilds byte for byte from its summaries
    assert main(base + ["--models", "Persistence", "--epochs", "1"]) == 0
    assert (workdir / "report" / "leaderboard.md").read_text() == md
    copy = workdir / "copy"
    shutil.copytree(workdir / "report", copy)
    assert main(["report", "--dataset", "Tiny", "--report-dir", str(copy), "--out", str(workdir / "nowhere")]) == 0
    assert (copy / "leaderboard.md").read_text() == md


def test_the_other_rows_of_a_left_out_model_are_left_out_with_it(tiny_dataset, workdir, capsys):
    from stvfm_plugin.leaderboard.cli import _budget, build_parser

    args = build_parser().parse_args(["run", "--dataset", "Tiny", "--models", "Persistence", "STID:train_fraction=0.5",
                                      "--leave-out", "STID=one step takes 273 s", "--config-dir",
                                      str(REPO / "baselines_cfg")])
    budget = _budget(args)
    assert budget.models == ["Persistence"]
    assert budget.left_out == {"STID": "one step takes 273 s", "STID:train_fraction=0.5": "one step takes 273 s"}


def test_the_protocol_says_which_precision_every_row_used():
    from stvfm_plugin.leaderboard.markdown import precision_line

    def row(model, *configs):
        return ModelRow(model, [SeedRun(seed, "finished", {"overall": {"MAE": 1.0}}, {}, {"model_config": config})
                                for seed, config in enumerate(configs, 1)])

    plain = [row("STID", {}), row("STVFM", {"precision": "fp32"}, {})]  # no entry: a run from before it, fp32
    assert precision_line(plain) == ("- Precision: fp32 for every row (weights, optimizer, loss and metrics fp32 "
                                     "throughout)")
    half = plain + [row("STVFM:precision=bf16", {"precision": "bf16", "precision_scope": "model"},
                        {"precision": "bf16", "precision_scope": "model"}),
                    row("STVFM:precision_scope=backbone", {"precision": "bf16", "precision_scope": "backbone"})]
    assert precision_line(half).startswith("- Precision: fp32 for every row but STVFM:precision=bf16: bf16 (model); "
                                           "STVFM:precision_scope=backbone: bf16 (backbone) (autocast of")


def test_the_protocol_names_the_trained_rows_scaler_when_a_naive_reference_ranks_first():
    """A naive reference's run has no scaler: the protocol list reads the trained rows' config (TaxiNYC, where the copy
    of last week ranks first, once said "Scaler: None")."""
    from stvfm_plugin.leaderboard.markdown import protocol_lines

    common = {"dataset_name": "Grid", "null_val": -1.0, "metrics": ["MAE"], "eval_horizons": [3],
              "dataset_params": {"input_len": 168, "output_len": 12}}
    reference = ModelRow("SeasonalWeek", [SeedRun(1, "finished", cfg=dict(common))], rank=1)
    model = ModelRow("STID", [SeedRun(1, "finished", cfg={**common, "scaler": {"name": "ZScoreScalerFixed"},
                                                         "norm_each_channel": False})], rank=2)
    settings = {"budget": {"dataset": "Grid", "seeds": [1], "budget": "convergence", "epochs": 100, "patience": 10,
                           "history": "week-residual"}, "dataset_meta": {}, "device": "cpu"}
    lines = protocol_lines(settings, [reference, model])
    assert "- Scaler: ZScoreScalerFixed (norm_each_channel=False, fitted on the training split); metrics in data units " \
           "(rescale=True)" in lines
