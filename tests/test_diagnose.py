"""`python -m stvfm_plugin.diagnose`: mean-ablations, gates and token statistics of a trained ST-VFM."""
from __future__ import annotations

import json
import subprocess

import pytest
import torch

from stvfm_plugin.models.stvfm import STVFM
from stvfm_plugin.models.stvfm.diagnostics import MeanOutput, natural_image, token_stats

from conftest import STID_TINY, python, write_config
from test_stvfm import STVFM_TINY, batch, tiny


@pytest.mark.parametrize("groups", [1, 2])
def test_mean_output_records_then_replaces_by_the_group_means(groups):
    layer = torch.nn.Linear(3, 4)
    hook = MeanOutput(layer, groups)
    xs = [torch.randn(groups * 5, 6, 3) for _ in range(2)]
    outs = [layer(x) for x in xs]  # recorded, returned unchanged
    assert all(torch.equal(o, torch.nn.functional.linear(x, layer.weight, layer.bias)) for o, x in zip(outs, xs))
    expected = torch.cat([o.reshape(groups, 5, 6, 4) for o in outs], dim=1).double().mean(dim=1)  # [G, 6, 4]
    hook.armed = True
    replaced = layer(torch.randn(groups * 2, 6, 3)).reshape(groups, 2, 6, 4)
    assert torch.allclose(replaced, expected[:, None].expand(-1, 2, -1, -1).float(), atol=1e-6)
    hook.handle.remove()


def test_token_stats_and_natural_image():
    same = torch.ones(2, 5, 8)
    assert token_stats(same)["cosine"] == pytest.approx(1.0)
    image = natural_image((28, 28))
    assert image.shape == (1, 3, 28, 28) and image.mean().abs() < 1e-5 and image.std() == pytest.approx(1.0, abs=0.05)


@pytest.mark.parametrize("history", ["recent", "week-residual", "weeks-residual"])
def test_diagnose_a_trained_run_reproduces_its_validation_mae(workdir, history):
    """Also under `weeks-residual`, whose model reads only the last week of each window."""
    from stvfm_plugin.data.synth import SynthOptions, synth_dataset

    weeks = 17 if history == "weeks-residual" else 7  # validation needs a window of three weeks and 12 steps
    synth_dataset(workdir / "datasets", "Hourly", SynthOptions(num_nodes=12, num_steps=24 * 7 * weeks, step_minutes=60,
                                                              seed=1))
    cfg = write_config(workdir, STVFM_TINY)
    where = ["--dataset", "Hourly", "--history", history]
    run = subprocess.run([python(), "-m", "basicts.run", "-c", str(cfg), "--no-test", "--run-dir", "run", *where],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    best = json.loads((workdir / "run" / "run_info.json").read_text())["best_metrics"]["val/MAE"]
    proc = subprocess.run([python(), "-m", "stvfm_plugin.diagnose", "-c", str(cfg), "--checkpoint",
                           "run/STVFM_best_val_MAE.pt", "--out", "found.json", *where], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    found = json.loads((workdir / "found.json").read_text())
    rows = {r["ablation"]: r for r in found["ablations"]}
    assert rows["none (the trained model)"]["val_mae"] == pytest.approx(best, rel=1e-5)
    assert rows["forecast head: the node's own input window -> its mean"]["change"] != 0
    assert set(found["gates"]) == {"flow_to_raw", "raw_to_flow"}
    assert set(found["head_parts"]) == {"token context", "own window", "node embedding"}
    assert "| part replaced by its mean | val MAE | change |" in proc.stdout
    assert not any(workdir.glob("checkpoints"))  # it reads the run, it writes no run folder


def test_diagnose_reports_every_ablation_and_leaves_the_model_as_it_was():
    from stvfm_plugin.models.stvfm.diagnostics import ablations

    torch.manual_seed(0)
    model = STVFM(tiny(7)).eval()
    x, ts, y, mask = batch(4, 12, 12, 7)
    batches = [{"inputs": x, "inputs_timestamps": ts, "targets": y, "targets_mask": mask}]
    before = model(x, ts)

    def score(prediction, b):
        return (prediction - b["targets"]).abs() * b["targets_mask"]

    rows = ablations(model, batches, score)
    assert len(rows) == 7 and rows[0]["change"] == 0.0 and rows[0]["by_inputs"] == {}
    missing = torch.ones_like(x, dtype=torch.bool)
    missing[:, 3, :2] = False  # nodes 0 and 1 miss one input reading
    split = ablations(model, [dict(batches[0], inputs_mask=missing)], score)[0]["by_inputs"]
    with torch.no_grad():
        errors = score(model(x, ts), batches[0])
    assert split["missing inputs"]["val_mae"] == pytest.approx(float(errors[..., :2].mean()), rel=1e-5)
    assert split["complete inputs"]["val_mae"] == pytest.approx(float(errors[..., 2:].mean()), rel=1e-5)
    assert torch.equal(model(x, ts), before)  # hooks removed, node embedding restored


@pytest.mark.parametrize("case", ["missing checkpoint", "not ST-VFM"])
def test_diagnose_errors_are_one_line(case, tiny_dataset, workdir):
    cfg = write_config(workdir, STVFM_TINY if case == "missing checkpoint" else STID_TINY)
    (workdir / "some.pt").write_bytes(b"")
    ckpt = "absent.pt" if case == "missing checkpoint" else "some.pt"
    proc = subprocess.run([python(), "-m", "stvfm_plugin.diagnose", "-c", str(cfg), "--checkpoint", ckpt],
                          capture_output=True, text=True, timeout=600)
    expected = ("error: --checkpoint absent.pt: no such file." if case == "missing checkpoint" else
                f"error: {cfg} builds STID, not ST-VFM: the diagnostics read ST-VFM's parts.")
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1] == expected, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
