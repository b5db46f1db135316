"""Half precision (`precision`, `precision_scope`): what runs in it, what stays fp32, and the clear refusals."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from stvfm_plugin.errors import UserError
from stvfm_plugin.models.precision import autocast, check_precision, needs_loss_scaling
from stvfm_plugin.models.stvfm import STVFM
from stvfm_plugin.run import main

from conftest import write_config
from test_stvfm import STVFM_TINY, batch, tiny, trainable_and_frozen


def dtypes_of_linear_outputs(model: torch.nn.Module, x, ts) -> dict:
    """The dtype each nn.Linear of `model` computed in, by module name."""
    seen, hooks = {}, []

    def record(name: str):
        def hook(module, inputs, output) -> None:  # returns nothing: the output is kept as it is
            seen.setdefault(name, output.dtype)
        return hook

    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear):
            hooks.append(module.register_forward_hook(record(name)))
    model(x, ts)
    for hook in hooks:
        hook.remove()
    return seen


@pytest.mark.parametrize("scope", ["backbone", "model"])
@pytest.mark.parametrize("n", [7, 16])
def test_bf16_runs_where_the_scope_says_and_everything_else_stays_fp32(scope, n):
    torch.manual_seed(0)
    model = STVFM(tiny(n, precision="bf16", precision_scope=scope)).eval()
    x, ts, _, _ = batch(2, 12, 12, n)
    seen = dtypes_of_linear_outputs(model, x, ts)
    frozen = {name: d for name, d in seen.items() if name.startswith("vfm.")}
    rest = {name: d for name, d in seen.items() if not name.startswith("vfm.")}
    assert frozen and set(frozen.values()) == {torch.bfloat16}
    assert set(rest.values()) == ({torch.bfloat16} if scope == "model" else {torch.float32})
    assert model(x, ts).dtype == torch.float32  # the outputs stay fp32, as the metrics and the loss read them
    assert all(p.dtype == torch.float32 for p in model.parameters())  # the master weights too


@pytest.mark.parametrize("scope", ["backbone", "model"])
def test_bf16_forecasts_what_fp32_forecasts_to_bf16_accuracy_and_every_trainable_part_learns(scope):
    x, ts, y, mask = batch(4, 12, 12, 7)
    torch.manual_seed(0)
    exact = STVFM(tiny(7)).eval()
    torch.manual_seed(0)
    half = STVFM(tiny(7, precision="bf16", precision_scope=scope))
    half.load_state_dict(exact.state_dict())  # the same weights: only the compute type differs
    half.eval()
    a, b = exact(x, ts), half(x, ts)
    assert not torch.equal(a, b)  # really computed otherwise
    assert (a - b).abs().max() <= 0.05 * a.abs().max()  # bf16 keeps 8 bits of mantissa: about 2 decimal digits
    half.train()
    out = half(x, ts, y, mask, train=True)
    (torch.nn.functional.l1_loss(out["prediction"], y) + out["aux_loss"]).backward()
    trainable, frozen = trainable_and_frozen(half)
    assert all(p.grad is None for p in frozen.values())
    no_grad = [k for k, p in trainable.items() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not no_grad, no_grad
    assert all(p.grad.dtype == torch.float32 for p in trainable.values())  # fp32 gradients for an fp32 optimizer


def test_fp32_is_unchanged_by_the_setting():
    x, ts, _, _ = batch(2, 12, 12, 7)
    outs = []
    for precision in ("fp32", None):
        torch.manual_seed(5)
        model = STVFM(tiny(7, **({"precision": precision} if precision else {}))).eval()
        outs.append(model(x, ts))
    assert torch.equal(*outs)


@pytest.mark.parametrize("kw,message", [
    (dict(precision="fp8"), "precision='fp8': choose one of fp32, bf16, fp16."),
    (dict(precision="bf16", precision_scope="heads"), "precision_scope='heads': choose one of model, backbone."),
])
def test_unknown_precision_or_scope_is_refused_when_the_config_is_built(kw, message):
    with pytest.raises(UserError, match=message.replace("(", "\\(").replace(")", "\\)")):
        tiny(7, **kw)


def test_fp16_is_refused_on_a_cpu_with_the_way_out():
    with pytest.raises(UserError, match="precision='fp16' runs on GPUs only; this model runs on cpu. Use "
                                        "precision='bf16' on a CPU"):
        autocast("fp16", torch.device("cpu"))
    model = STVFM(tiny(7, precision="fp16"))
    assert needs_loss_scaling(model) and not needs_loss_scaling(STVFM(tiny(7, precision="bf16")))
    x, ts, _, _ = batch(2, 12, 12, 7)
    with pytest.raises(UserError, match="runs on GPUs only"):
        model(x, ts)
    check_precision("fp16", "model")  # valid as a setting: a GPU run takes it


def test_a_bf16_run_trains_says_its_precision_and_an_fp16_cpu_run_is_refused_before_training(tiny_dataset, workdir,
                                                                                              capsys):
    cfg = write_config(workdir, STVFM_TINY)
    assert main(["-c", str(cfg), "--run-dir", "bf16", "--set", "model_config.precision=bf16"]) == 0
    info = json.loads(Path("bf16/run_info.json").read_text())
    assert "ST-VFM precision: bf16 (the whole forward pass; weights, optimizer and outputs fp32)" in info["build_report"]
    metrics = json.loads(Path("bf16/test_metrics.json").read_text())["overall"]
    assert all(torch.isfinite(torch.tensor(v)) for v in metrics.values())
    capsys.readouterr()
    assert main(["-c", str(cfg), "--run-dir", "fp16", "--set", "model_config.precision=fp16"]) == 2
    assert "precision='fp16' runs on GPUs only" in capsys.readouterr().err
    assert not list(Path("fp16").glob("*.pt"))


def test_bf16_on_a_cpu_computes_the_frozen_attention_unfused_and_fp32_keeps_timms_choice():
    x, ts, _, _ = batch(2, 12, 12, 7)
    fused = lambda model: {m.fused_attn for m in model.vfm.vit.modules() if hasattr(m, "fused_attn")}  # noqa: E731
    torch.manual_seed(0)
    plain = STVFM(tiny(7)).eval()
    chosen = fused(plain)
    exact = plain(x, ts)
    assert fused(plain) == chosen  # fp32: timm's own choice, untouched
    torch.manual_seed(0)
    half = STVFM(tiny(7, precision="bf16")).eval()
    half.load_state_dict(plain.state_dict())
    assert (half(x, ts) - exact).abs().max() <= 0.05 * exact.abs().max()
    assert fused(half) == {False}
    half.vfm.set_fused_attention(True)
    assert fused(half) == {True}
