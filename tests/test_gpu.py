"""On a CUDA GPU: ST-VFM computes there what it computes on the CPU, and BasicTS runs (ST-VFM alone and the
leaderboard) train and test there. Skipped on machines without CUDA, i.e. in CI; run by hand where a GPU is
(`python -m pytest tests/test_gpu.py`)."""
from __future__ import annotations

import copy
import json
import subprocess

import numpy as np
import pytest
import torch

from stvfm_plugin.models.stvfm import STVFM

from conftest import STID_TINY, finite_metrics, python, write_config
from test_stvfm import STVFM_TINY, batch, tiny, trainable_and_frozen

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine")


@pytest.fixture(autouse=True)
def exact_matmuls():
    """TF32 would make CPU and GPU differ by more than rounding."""
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


@pytest.mark.parametrize("patch_size", [1, 3])
def test_stvfm_on_cuda_computes_what_it_computes_on_the_cpu(patch_size):
    n = 13
    adj = np.zeros((n, n), dtype=np.float32)
    for i in range(n - 1):
        adj[i, i + 1] = adj[i + 1, i] = 1
    torch.manual_seed(0)
    cpu = STVFM(tiny(n, patch_size=patch_size), adj=adj).eval()
    gpu = copy.deepcopy(cpu).cuda()
    x, ts, y, mask = batch(4, 12, 12, n)
    with torch.no_grad():
        expected = cpu(x, ts)
        got = gpu(x.cuda(), ts.cuda())
    assert got.device.type == "cuda"
    torch.testing.assert_close(got.cpu(), expected, atol=1e-4, rtol=1e-4)

    gpu.train()
    out = gpu(x.cuda(), ts.cuda(), y.cuda(), mask.cuda(), train=True)
    (out["prediction"].square().mean() + out["aux_loss"]).backward()
    trainable, frozen = trainable_and_frozen(gpu)
    assert frozen and all(p.grad is None for p in frozen.values())
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in trainable.values())


def test_basicts_run_trains_and_tests_stvfm_on_the_gpu_and_its_checkpoint_evaluates_on_the_cpu(tiny_dataset, workdir):
    cfg = write_config(workdir, STVFM_TINY)
    proc = subprocess.run([python(), "-m", "basicts.run", "-c", str(cfg), "-g", "0"], capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Device: cuda:0 (" in proc.stdout + proc.stderr
    (run,) = [p.parent for p in workdir.glob("checkpoints/**/cfg.json")]
    info = json.loads((run / "run_info.json").read_text())
    assert info["device"] == "cuda:0"
    trained = json.loads((run / "test_metrics.json").read_text())
    assert finite_metrics(trained)
    proc = subprocess.run([python(), "-m", "basicts.run", "-c", str(cfg), "-g", "cpu", "--eval",
                           str(run / "STVFM_best_val_MAE.pt")], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (eval_dir,) = run.glob("eval-*")
    evaluated = json.loads((eval_dir / "test_metrics.json").read_text())
    assert evaluated["overall"]["MAE"] == pytest.approx(trained["overall"]["MAE"], rel=1e-4)


def test_leaderboard_runs_its_models_on_the_gpu(tiny_dataset, workdir):
    configs = workdir / "cfgs"
    configs.mkdir()
    write_config(configs, STID_TINY, "STID_Tiny.py")
    write_config(configs, STVFM_TINY, "STVFM_Tiny.py")
    proc = subprocess.run([python(), "-m", "stvfm_plugin.leaderboard", "run", "--dataset", "Tiny", "--models", "STID",
                           "STVFM", "STVFM:vfm_layers=0", "--epochs", "2", "--patience", "2", "--seeds", "1",
                           "--config-dir", str(configs), "-g", "0"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "done: 3 finished, 0 failed" in proc.stdout
    for model in ("STID", "STVFM", "STVFM@vfm_layers=0"):
        assert json.loads((workdir / "leaderboard" / "Tiny" / model / "seed-1" / "run_info.json").read_text())[
            "device"] == "cuda:0", model
    md = (workdir / "leaderboard" / "Tiny" / "report" / "leaderboard.md").read_text()
    name = torch.cuda.get_device_name(0)
    assert "| STVFM:vfm_layers=0 | 1 |" in md and f"- Device: GPU 0 ({name}); software:" in md


def test_a_gpu_trained_run_forecasts_on_the_gpu_what_it_forecasts_on_the_cpu(tiny_dataset, workdir):
    from stvfm_plugin.forecaster import Forecaster

    cfg = write_config(workdir, STVFM_TINY)
    proc = subprocess.run([python(), "-m", "basicts.run", "-c", str(cfg), "-g", "0", "--run-dir", "run"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    on_gpu = Forecaster.load(workdir / "run", gpu=True)
    assert next(on_gpu.runner.bare_model.parameters()).is_cuda
    gpu_table = on_gpu.forecast()
    cpu_table = Forecaster.load(workdir / "run").forecast()
    np.testing.assert_allclose(gpu_table["forecast"], cpu_table["forecast"], atol=1e-3, rtol=1e-4)
    np.testing.assert_allclose(gpu_table["upper"], cpu_table["upper"], atol=1e-3, rtol=1e-4)


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
@pytest.mark.parametrize("scope", ["model", "backbone"])
def test_half_precision_on_the_gpu_forecasts_what_fp32_forecasts_and_keeps_fp32_weights_and_gradients(precision, scope):
    n = 13
    torch.manual_seed(0)
    exact = STVFM(tiny(n)).cuda().eval()
    torch.manual_seed(0)
    half = STVFM(tiny(n, precision=precision, precision_scope=scope)).cuda()
    half.load_state_dict(exact.state_dict())
    half.eval()
    x, ts, y, mask = (t.cuda() for t in batch(4, 12, 12, n))
    with torch.no_grad():
        a, b = exact(x, ts), half(x, ts)
    assert b.dtype == torch.float32 and (a - b).abs().max() <= 0.05 * a.abs().max()
    assert {m.fused_attn for m in half.vfm.vit.modules() if hasattr(m, "fused_attn")} <= {True}  # fused on a GPU
    half.train()
    out = half(x, ts, y, mask, train=True)
    (torch.nn.functional.l1_loss(out["prediction"], y) + out["aux_loss"]).backward()
    trainable, _ = trainable_and_frozen(half)
    assert all(p.dtype == torch.float32 and p.grad.dtype == torch.float32 and torch.isfinite(p.grad).all()
               for p in trainable.values())


def test_an_fp16_run_on_the_gpu_scales_its_loss_and_tests(tiny_dataset, workdir):
    cfg = write_config(workdir, STVFM_TINY)
    proc = subprocess.run([python(), "-m", "basicts.run", "-c", str(cfg), "-g", "0", "--run-dir", "fp16",
                           "--set", "model_config.precision=fp16"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = proc.stdout + proc.stderr
    assert "ST-VFM precision: fp16 (the whole forward pass" in log and "amp_scale" in log  # BasicTS's GradScaler meter
    assert finite_metrics(json.loads((workdir / "fp16" / "test_metrics.json").read_text()))
