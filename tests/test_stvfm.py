"""ST-VFM: shapes, ablation switches, freezing, gradients, determinism, weights, checkpoints, errors.

All tests use timm's tiny `test_vit` (width 64) with random weights; they take seconds.
"""
from __future__ import annotations

import hashlib
import json
import os
import math
import shutil
import subprocess
import time

import numpy as np
import pytest
import timm
import torch
from safetensors.torch import save_file

from stvfm_plugin.errors import UserError
from stvfm_plugin.files import file_sha256
from stvfm_plugin.models.stvfm import STVFM, STVFMConfig
from stvfm_plugin.models.stvfm.arch.spatial_layout import (SpatialLayout, choose_patch_size, node_cells,
                                                           token_grid_size)
from stvfm_plugin.models.stvfm.arch.st_flow import future_flow, st_flow

import reliability
from conftest import SHARED, needs_shared, python, write_config


def tiny(num_features: int = 7, **kw) -> STVFMConfig:
    base = dict(input_len=12, output_len=12, num_features=num_features, backbone="test_vit", pretrained=False,
                vfm_layers=2, adapter_hidden=32, head_hidden=32, num_prompts=2, prompt_heads=2, prompt_dim=16,
                patch_size=1, steps_per_day=288)  # one node per token unless a test groups them (7 nodes would be one 3 x 3 token)
    base.update(kw)
    return STVFMConfig(**base)


def batch(b: int, t_in: int, t_out: int, n: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(b, t_in, n, generator=g), torch.randn(b, t_out, n, generator=g)
    ts = torch.rand(b, t_in, 2, generator=g)
    return x, ts, y, torch.ones_like(y, dtype=torch.bool)


def trainable_and_frozen(model):
    params = dict(model.named_parameters())
    frozen = {k: p for k, p in params.items() if k.startswith("vfm.vit.")}
    return {k: p for k, p in params.items() if k not in frozen}, frozen


# ---- shapes ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("b,t_in,t_out,n", [(2, 12, 12, 7), (1, 6, 3, 1), (3, 24, 12, 10), (2, 12, 6, 16)])
def test_output_shapes_graphless(b, t_in, t_out, n):
    model = STVFM(tiny(n, input_len=t_in, output_len=t_out))
    x, ts, y, mask = batch(b, t_in, t_out, n)
    assert model(x, ts).shape == (b, t_out, n)
    out = model(x, ts, y, mask, train=True)
    assert out["prediction"].shape == (b, t_out, n) and out["aux_loss"].dim() == 0


@pytest.mark.parametrize("n", [5, 13])
def test_graph_dataset_uses_spectral_and_coords_layouts(n):
    adj = np.zeros((n, n), dtype=np.float32)
    for i in range(n - 2):  # a path plus one isolated node (disconnected, like Los-loop)
        adj[i, i + 1] = adj[i + 1, i] = 1
    model = STVFM(tiny(n), adj=adj)
    assert model.layout.kind == "spectral"
    x, ts, _, _ = batch(2, 12, 12, n)
    assert model(x, ts).shape == (2, 12, n)
    assert STVFM(tiny(n), adj=adj, coords=np.random.rand(n, 2)).layout.kind == "coords"


def test_grid_dataset_uses_patches():
    model = STVFM(tiny(20, patch_size=2, output_len=6), grid_shape=(5, 4))
    assert model.layout.grid_hw == (3, 2) and model.layout.cell_size == 4
    x, ts, y, mask = batch(2, 12, 6, 20)
    assert model(x, ts).shape == (2, 6, 20)


def test_layout_round_trip_and_neighbours_stay_close():
    n = 30
    adj = np.zeros((n, n))
    for i in range(n - 1):
        adj[i, i + 1] = adj[i + 1, i] = 1
    layout = SpatialLayout(n, "spectral", adj)
    x = torch.arange(2 * 3 * n, dtype=torch.float32).reshape(2, 3, n)
    assert torch.equal(layout.from_cells(layout.to_cells(x)), x)
    cells, (h, w), _ = node_cells(n, "spectral", adj, None)
    rc = np.stack([cells // w, cells % w], axis=1)
    neighbour = np.abs(rc[1:] - rc[:-1]).sum(axis=1).mean()
    random_pairs = np.abs(rc[np.random.default_rng(0).permutation(n)] - rc).sum(axis=1).mean()
    assert neighbour < random_pairs / 2


def path_graph(n: int) -> np.ndarray:
    adj = np.zeros((n, n))
    for i in range(n - 1):
        adj[i, i + 1] = adj[i + 1, i] = 1
    return adj


@pytest.mark.parametrize("n", [1, 2, 5, 7, 13, 30, 101, 207])
@pytest.mark.parametrize("p", [1, 2, 3, 4])
@pytest.mark.parametrize("layout", ["identity", "spectral", "coords"])
def test_grouped_node_tokens_round_trip(n, p, layout):
    coords = np.random.default_rng(n).random((n, 2))
    grid = SpatialLayout(n, layout if n > 2 or layout != "spectral" else "identity", path_graph(n), coords,
                         patch_size=p)
    assert grid.patch_size == p and grid.cell_size == p * p
    x = torch.randn(2, 3, n)
    cells = grid.to_cells(x)
    assert cells.shape == (2, grid.num_cells, 3 * p * p)
    assert torch.equal(grid.from_cells(cells), x)  # nodes -> cells -> nodes is the identity
    index = grid.index.numpy()
    assert sorted(index[index < n].tolist()) == list(range(n))  # every node in exactly one slot
    assert torch.equal(grid.slot_valid, grid.index < n)
    assert (grid.index[grid.node_token] == torch.arange(n)[:, None]).any(dim=1).all()  # each node's own token
    empty = ~grid.slot_valid  # empty slots read 0
    assert torch.all(cells.reshape(2, grid.num_cells, 3, p * p).permute(0, 2, 1, 3)[:, :, empty] == 0)


@pytest.mark.parametrize("n", [7, 207, 1000, 8600])
@pytest.mark.parametrize("max_tokens", [4, 64, 256])
def test_automatic_patch_size_respects_max_tokens_and_is_the_smallest(n, max_tokens):
    p = choose_patch_size(n, 1, max_tokens)
    tokens = math.prod(token_grid_size(n, p))
    assert tokens <= max_tokens
    assert p == 1 or math.prod(token_grid_size(n, p - 1)) > max_tokens
    grid = SpatialLayout(n, "identity", patch_size=1, max_tokens=max_tokens)
    assert grid.num_cells == tokens and grid.patch_size == p
    if p > 1:
        assert f"raised from patch_size=1 to fit max_tokens={max_tokens}" in grid.describe()
    assert choose_patch_size(n, 3, None) == 3  # no bound: the asked p


def test_raised_patch_size_is_written_in_the_log():
    model = STVFM(tiny(30, patch_size=1, max_tokens=4))
    line = next(l for l in model.build_report if "token grid" in l)
    assert "2 x 2 tokens" in line and "3 x 3 cells per token, raised from patch_size=1 to fit max_tokens=4" in line


def test_facts_left_to_the_dataset_must_be_there_when_the_model_is_built():
    with pytest.raises(UserError, match=r"ST-VFM: num_features \(the number of nodes\) is not set"):
        STVFM(tiny(None))
    with pytest.raises(UserError, match="ST-VFM: use_time_of_day=True needs steps_per_day"):
        STVFM(tiny(7, steps_per_day=None, use_time_of_day=True))
    weekly = STVFM(tiny(7, steps_per_day=None))  # no slots: time of day off, day of week on
    assert weekly.raw_adapter.calendar.time_of_day is None and weekly.raw_adapter.calendar.day_of_week is not None


@pytest.mark.parametrize("kw,message", [
    (dict(patch_size=0), "patch_size=0: give 1 or more"),
    (dict(max_tokens=0), "max_tokens=0: give 1 or more, or None for no bound"),
])
def test_patch_config_errors(kw, message):
    with pytest.raises(UserError, match=message):
        tiny(7, **kw)


@pytest.mark.parametrize("n,p", [(7, 2), (13, 3), (16, 2)])
def test_grouped_tokens_model_shapes_and_every_trainable_part_learns(n, p):
    torch.manual_seed(0)
    model = STVFM(tiny(n, patch_size=p, output_len=6))
    x, ts, y, mask = batch(3, 12, 6, n)
    out = model(x, ts, y, mask, train=True)
    assert out["prediction"].shape == (3, 6, n)
    (torch.nn.functional.l1_loss(out["prediction"], y) + out["aux_loss"]).backward()
    trainable, frozen = trainable_and_frozen(model)
    assert all(p.grad is None for p in frozen.values())
    assert not [k for k, p in trainable.items() if p.grad is None or not p.grad.abs().sum() > 0]


def test_flow_of_the_cells_is_the_flow_of_the_nodes():
    """The optimised path (flow taken on the gathered cells: one gather, not two) equals the plain one."""
    grid = SpatialLayout(13, "identity", patch_size=2)
    x = torch.randn(2, 12, 13)
    cells = grid.to_cells(x)
    k = grid.cell_size
    fast = st_flow(cells.reshape(2, grid.num_cells, 12, k), dim=2).reshape(cells.shape)
    assert torch.equal(fast, grid.to_cells(st_flow(x)))


def test_compiled_backbone_matches_the_plain_one_on_a_fixed_batch():
    x, ts, _, _ = batch(2, 12, 12, 7)
    outputs = []
    for compiled in (False, True):
        torch.manual_seed(0)
        model = STVFM(tiny(7, patch_size=2, compile_backbone=compiled)).eval()
        with torch.inference_mode():
            outputs.append(model(x, ts))
        assert not any(k.startswith("vfm.") and "compiled" in k for k in model.state_dict())
    assert torch.allclose(outputs[0], outputs[1], atol=1e-5, rtol=1e-5)


def test_st_flow_and_future_flow():
    x = torch.tensor([[[1.0], [3.0], [6.0]]])
    assert st_flow(x).flatten().tolist() == [0, 2, 3]
    y = torch.tensor([[[7.0], [9.0]]])
    mask = torch.tensor([[[True], [False]]])
    flow, valid = future_flow(x[:, -1:], y, mask)
    assert flow.flatten().tolist() == [1, 2] and valid.flatten().tolist() == [True, False]


# ---- ablations ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("switch", [
    dict(use_flow_branch=False, use_cross_prompt=False), dict(use_cross_prompt=False), dict(flow_loss_weight=0.0),
    dict(use_temporal_context=False), dict(use_day_of_week=False), dict(use_learned_pos_embed=False),
    dict(layout="identity"), dict(vfm_layers=1), dict(vfm_layers=None), dict(use_vfm_pos_embed=False),
    dict(match_token_stats=False), dict(use_adapter_skip=False), dict(head_hidden=0),
])
def test_every_ablation_switch_builds_and_runs(switch):
    model = STVFM(tiny(7, **switch))
    x, ts, y, mask = batch(2, 12, 12, 7)
    out = model(x, ts, y, mask, train=True)
    prediction = out["prediction"] if isinstance(out, dict) else out
    assert prediction.shape == (2, 12, 7) and torch.isfinite(prediction).all()
    has_aux = model.config.use_flow_branch and model.config.flow_loss_weight > 0
    assert isinstance(out, dict) == has_aux


# ---- freezing and gradients ------------------------------------------------------------------------------

def test_frozen_backbone_no_grad_eval_mode_and_trainable_all_get_gradients():
    torch.manual_seed(0)
    model = STVFM(tiny(7))
    model.train()
    assert not model.vfm.vit.training and all(not m.training for m in model.vfm.vit.modules())
    assert model.raw_adapter.training
    x, ts, y, mask = batch(4, 12, 12, 7)
    out = model(x, ts, y, mask, train=True)
    (torch.nn.functional.l1_loss(out["prediction"], y) + out["aux_loss"]).backward()
    trainable, frozen = trainable_and_frozen(model)
    assert frozen and all(not p.requires_grad and p.grad is None for p in frozen.values())
    no_grad = [k for k, p in trainable.items() if p.grad is None or not p.grad.abs().sum() > 0]
    assert trainable and not no_grad, no_grad


def test_same_seed_same_output():
    x, ts, _, _ = batch(2, 12, 12, 7)
    outs = []
    for _ in range(2):
        torch.manual_seed(123)
        model = STVFM(tiny(7)).eval()
        outs.append(model(x, ts))
    torch.manual_seed(124)
    other = STVFM(tiny(7)).eval()(x, ts)
    assert torch.equal(outs[0], outs[1]) and not torch.equal(outs[0], other)


def test_aux_loss_nonzero_in_training_absent_in_eval_and_changes_gradient():
    torch.manual_seed(0)
    model = STVFM(tiny(7, dropout=0.0))
    x, ts, y, mask = batch(4, 12, 12, 7)
    out = model(x, ts, y, mask, train=True)
    assert out["aux_loss"].item() > 0
    assert isinstance(model(x, ts, torch.empty_like(y), mask, train=False), torch.Tensor)

    def grads(with_aux: bool):
        model.zero_grad()
        out = model(x, ts, y, mask, train=True)
        loss = torch.nn.functional.l1_loss(out["prediction"], y) + (out["aux_loss"] if with_aux else 0)
        loss.backward()
        return torch.cat([p.grad.flatten() for p in model.flow_adapter.parameters()])

    assert not torch.allclose(grads(True), grads(False))


def test_flow_loss_of_residual_targets_reads_the_flow_of_the_data():
    """Under `--history week-residual` the targets are `data - copy` and `targets_base` the copy: the flow loss is the
    one of the data itself, not of a series that jumps from the last reading to a residual."""
    torch.manual_seed(0)
    model = STVFM(tiny(7, dropout=0.0))
    x, ts, y, mask = batch(2, 12, 12, 7)
    copy = x + 3.0  # far from the data, so that a mixed-up flow target shows
    plain = model(x, ts, y, mask, train=True)["aux_loss"]
    residual = model(x, ts, y - copy, mask, train=True, targets_base=copy)["aux_loss"]
    assert torch.allclose(residual, plain, atol=1e-5)
    assert not torch.allclose(model(x, ts, y - copy, mask, train=True)["aux_loss"], plain)


def test_flow_head_runs_only_for_the_training_loss():
    """Validation, test and forecasts skip the flow head; the forecast is the same as with it."""
    torch.manual_seed(0)
    model = STVFM(tiny(7, dropout=0.0)).eval()
    calls = []
    model.flow_head.register_forward_hook(lambda *_: calls.append(1))
    x, ts, y, mask = batch(2, 12, 12, 7)
    with torch.no_grad():
        prediction = model(x, ts, y, mask)
        assert calls == []
        out = model(x, ts, y, mask, train=True)
    assert calls == [1] and torch.equal(out["prediction"], prediction)


# ---- weights ------------------------------------------------------------------------------------------

@pytest.fixture
def weights_file(tmp_path):
    torch.manual_seed(42)
    vit = timm.create_model("test_vit", pretrained=False, num_classes=0)
    with torch.no_grad():
        for p in vit.parameters():
            p.add_(0.05 * torch.randn_like(p))
    path = tmp_path / "test_vit.safetensors"
    save_file({k: v.contiguous() for k, v in vit.state_dict().items()}, str(path))
    return path, vit


def test_weights_file_really_changes_the_backbone(weights_file):
    path, reference = weights_file
    torch.manual_seed(0)
    loaded = STVFM(tiny(7, pretrained=True, backbone_weights=str(path), vfm_layers=None))
    torch.manual_seed(0)
    random = STVFM(tiny(7, vfm_layers=None))
    image = torch.randn(1, 3, *reference.patch_embed.img_size)
    ours = loaded.vfm.vit.forward_features(image)
    assert torch.allclose(ours, reference.eval().forward_features(image), atol=1e-5)
    assert not torch.allclose(ours, random.vfm.vit.forward_features(image), atol=1e-3)
    source = loaded.backbone_source
    assert source.kind == "file" and source.path == path and source.name == path.name
    assert source.sha256 == file_sha256(path) and "sha256" in source.describe() and str(path) in source.describe()


def test_env_variable_folder_supplies_weights(weights_file, monkeypatch):
    path, _ = weights_file
    monkeypatch.setenv("STVFM_BACKBONE_WEIGHTS", str(path.parent))
    model = STVFM(tiny(7, pretrained=True))
    assert model.backbone_source.found_by == "STVFM_BACKBONE_WEIGHTS"
    assert "via STVFM_BACKBONE_WEIGHTS" in model.backbone_source.describe()


def test_checkpoint_round_trip_without_frozen_weights(weights_file):
    path, _ = weights_file
    config = dict(pretrained=True, backbone_weights=str(path))
    torch.manual_seed(0)
    model = STVFM(tiny(7, **config))
    x, ts, y, mask = batch(2, 12, 12, 7)
    out = model(x, ts, y, mask, train=True)
    (out["prediction"].abs().mean() + out["aux_loss"]).backward()
    state = model.state_dict()
    assert state and not any(k.startswith("vfm.vit.") for k in state)
    torch.manual_seed(99)  # different init of the trainable parts
    clone = STVFM(tiny(7, **config))
    clone.load_state_dict(state, strict=True)
    assert torch.equal(model.eval()(x, ts), clone.eval()(x, ts))


def test_checkpoint_refuses_other_backbone_weights_unless_asked(weights_file, caplog):
    path, _ = weights_file
    torch.manual_seed(0)
    state = STVFM(tiny(7, pretrained=True, backbone_weights=str(path))).state_dict()
    expected = state["vfm._extra_state"]["file_sha256"]
    assert state["vfm._extra_state"]["weights"] == path.name and len(expected) == 64
    random = STVFM(tiny(7))
    with pytest.raises(UserError) as err:
        random.load_state_dict(state)
    assert str(err.value) == (
        f"This checkpoint was trained with the backbone {state['vfm._extra_state']['backbone']} with weights {path.name} "
        f"(sha256 {expected}), but the model now has RANDOM. Load the same weights (--set "
        f"model_config.backbone_weights=FILE or STVFM_BACKBONE_WEIGHTS, a file with sha256 {expected}), or score it "
        "with these weights on purpose with --set model_config.allow_other_backbone=True.")
    STVFM(tiny(7, allow_other_backbone=True)).load_state_dict(state)
    assert "Going on because allow_other_backbone=True" in caplog.text
    old = {k: v for k, v in state.items() if k != "vfm._extra_state"}  # written before identities were recorded
    STVFM(tiny(7)).load_state_dict(old)
    assert "cannot be checked" in caplog.text


# ---- errors ---------------------------------------------------------------------------------------------

def test_unknown_backbone_fails_at_config_time_with_aliases():
    with pytest.raises(UserError, match="Unknown backbone 'resnet50'. Use an alias \\(dinov2_vits14, dino_vits16"):
        tiny(7, backbone="resnet50")


@pytest.mark.parametrize("kw,message", [
    (dict(layout="hilbert"), "layout='hilbert': choose one of auto, coords, spectral, identity"),
    (dict(use_flow_branch=False), "use_cross_prompt=True needs use_flow_branch=True"),
    (dict(num_features=0), "STVFMConfig.num_features must be the number of nodes (>= 1), or None"),
])
def test_config_errors(kw, message):
    with pytest.raises(UserError, match=message.replace("(", "\\(").replace(")", "\\)")):
        tiny(**({"num_features": 7} | kw))


def test_vfm_layers_out_of_range():
    with pytest.raises(UserError, match=r"vfm_layers=9: the backbone has 6 blocks; choose 1..6 \(or 0: no backbone"):
        STVFM(tiny(7, vfm_layers=9))


def test_no_weights_offline_fails_fast_and_says_how_to_fix(monkeypatch):
    monkeypatch.delenv("STVFM_BACKBONE_WEIGHTS", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "https://127.0.0.1:9")  # nothing listens there: unreachable
    start = time.time()
    with pytest.raises(UserError) as err:
        STVFM(tiny(7, backbone="deit_tiny", pretrained=True))
    assert time.time() - start < 15
    message = str(err.value)
    assert "No pretrained weights for backbone 'deit_tiny'" in message and "is not reachable" in message
    assert "model_config.backbone_weights=PATH" in message and "model_config.pretrained=False" in message


def test_random_fallback_is_warned(monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "https://127.0.0.1:9")
    model = STVFM(tiny(7, backbone="deit_tiny", pretrained=True, allow_random_fallback=True, vfm_layers=1))
    assert model.backbone_source.is_random
    assert "RANDOM backbone" in model.run_warnings[0]


def test_wrong_weights_file_names_the_mismatching_keys(tmp_path):
    vit = timm.create_model("test_vit2", pretrained=False, num_classes=0)
    path = tmp_path / "other.safetensors"
    save_file({k: v.contiguous() for k, v in vit.state_dict().items()}, str(path))
    with pytest.raises(UserError) as err:
        STVFM(tiny(7, pretrained=True, backbone_weights=str(path)))
    assert "do not fit VisionTransformer" in str(err.value)
    assert "shape mismatches: " in str(err.value) or "missing keys" in str(err.value)


def test_missing_weights_file_and_bad_env(tmp_path, monkeypatch):
    with pytest.raises(UserError, match="weights file .*nope.safetensors does not exist"):
        STVFM(tiny(7, pretrained=True, backbone_weights=str(tmp_path / "nope.safetensors")))
    monkeypatch.setenv("STVFM_BACKBONE_WEIGHTS", str(tmp_path / "missing"))
    with pytest.raises(UserError) as err:
        STVFM(tiny(7, pretrained=True))
    assert str(err.value) == f"STVFM_BACKBONE_WEIGHTS={tmp_path / 'missing'} is neither a file nor a folder."
    monkeypatch.chdir(tmp_path)  # a relative path is read from the working directory, and the message says which
    monkeypatch.setenv("STVFM_BACKBONE_WEIGHTS", "../weights")
    with pytest.raises(UserError) as err:
        STVFM(tiny(7, pretrained=True))
    assert str(err.value) == ("STVFM_BACKBONE_WEIGHTS=../weights is neither a file nor a folder (relative to the "
                              f"working directory {tmp_path}).")


@pytest.mark.parametrize("name,content", [("notes.txt", b"these are not weights\n"),
                                          ("corrupt.safetensors", b"\x10\x00\x00\x00\x00\x00\x00\x00{not json"),
                                          ("list.pt", None)])
def test_backbone_weights_that_are_not_a_weights_file(tmp_path, name, content):
    path = tmp_path / name
    if content is None:
        torch.save([1, 2, 3], path)
    else:
        path.write_bytes(content)
    with pytest.raises(UserError) as err:
        STVFM(tiny(7, pretrained=True, backbone_weights=str(path)))
    message = str(err.value)
    assert message.startswith(f"Backbone weights file {path} ") and message.endswith(
        "Give a .safetensors file or a torch state dict of the backbone in timm naming.")
    assert "\n" not in message


def test_coords_layout_without_coords():
    with pytest.raises(ValueError, match="layout='coords' needs node coordinates"):
        STVFM(tiny(7, layout="coords"))


# ---- shared DINOv2 weights --------------------------------------------------------------------------------

@needs_shared
def test_shared_dinov2_weights_through_the_config_entry_match_timm():
    path = SHARED / "weights" / "dinov2_vits14.safetensors"
    model = STVFM(STVFMConfig(num_features=4, backbone="dinov2_vits14", backbone_weights=str(path), vfm_layers=None))
    image = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    reference = timm.create_model("vit_small_patch14_dinov2", pretrained=True, num_classes=0, img_size=224,
                                  pretrained_cfg_overlay=dict(file=str(path))).eval()
    ours = timm.create_model("vit_small_patch14_dinov2", pretrained=False, num_classes=0, img_size=224)
    from stvfm_plugin.models.stvfm.arch.frozen_vfm import load_into, read_state_dict

    load_into(ours, read_state_dict(path), str(path))
    with torch.no_grad():
        assert torch.allclose(ours.eval().forward_features(image), reference.forward_features(image), atol=1e-4)
        # the model built from the config entry holds the same blocks and norm as timm's loaded model
        tokens = torch.randn(1, 4, 384)
        ref_x = torch.cat([reference.cls_token + model.vfm.prefix_pos_embed, tokens + model.vfm.grid_pos_embed], dim=1)
        assert torch.allclose(model.vfm(tokens), reference.norm(reference.blocks(ref_x))[:, 1:], atol=1e-4)
    assert model.backbone_source.sha256.startswith("dc75e3ddfb5c")


# ---- a real BasicTS run ------------------------------------------------------------------------------------

STVFM_TINY = """
from basicts.configs import BasicTSForecastingConfig
from stvfm_plugin.models.stvfm import STVFM, STVFMConfig
from stvfm_plugin.protocols import traffic_protocol

CFG = BasicTSForecastingConfig(
    model=STVFM,
    model_config=STVFMConfig(input_len=12, output_len=12, backbone="test_vit", pretrained=False, vfm_layers=2, adapter_hidden=32,
                             head_hidden=32, num_prompts=2, prompt_heads=2, prompt_dim=16),
    **traffic_protocol("Tiny"),
    num_epochs=1, batch_size=64, optimizer_params={"lr": 1e-3},
)
"""


def test_basicts_run_checkpoint_size_and_eval_in_new_process(tiny_dataset, workdir):
    cfg = write_config(workdir, STVFM_TINY)
    proc = subprocess.run([python(), "-m", "basicts.run", "-c", str(cfg), "-g", "cpu"], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = proc.stdout + proc.stderr
    assert "ST-VFM backbone weights: RANDOM (pretrained=False)" in log
    assert "ST-VFM token grid: 2 x 1 tokens (2 used), 3 x 3 cells per token; 12 nodes in 18 slots" in log
    (run,) = [p.parent for p in workdir.glob("checkpoints/**/cfg.json")]
    trained = json.loads((run / "test_metrics.json").read_text())
    ckpt = run / "STVFM_best_val_MAE.pt"
    saved = torch.load(ckpt, map_location="cpu", weights_only=False)
    state = saved["model_state_dict"]
    assert not any(k.startswith("vfm.vit.") for k in state) and "optim_state_dict" not in saved
    assert state["vfm._extra_state"]["weights"] == "RANDOM"  # the backbone's identity, not its weights
    assert ckpt.stat().st_size < 1.2 * sum(v.numel() * 4 for v in state.values() if torch.is_tensor(v)) + 100_000
    proc = subprocess.run([python(), "-m", "basicts.run", "-c", str(cfg), "--eval", str(ckpt)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (eval_dir,) = run.glob("eval-*")
    evaluated = json.loads((eval_dir / "test_metrics.json").read_text())
    assert evaluated["overall"]["MAE"] == pytest.approx(trained["overall"]["MAE"], rel=1e-6)
    info = json.loads((run / "run_info.json").read_text())
    assert info["trainable_params"] < info["total_params"] and info["epochs_run"] == 1
    assert info["backbone"] == {"kind": "random", "name": "test_vit", "found_by": "pretrained=False",
                                "sha256": None}  # where the weights came from, as a record: no text to search
    assert info["backbone_report"] == info["build_report"][:2] and "RANDOM (pretrained=False)" in info["backbone_report"][1]


def test_eval_refuses_other_or_missing_backbone_weights(tiny_dataset, workdir, tmp_path_factory):
    files = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        vit = timm.create_model("test_vit", pretrained=False, num_classes=0)
        files.append(tmp_path_factory.mktemp(f"w{seed}") / "test_vit.safetensors")
        save_file({k: v.contiguous() for k, v in vit.state_dict().items()}, str(files[-1]))
    cfg = write_config(workdir, STVFM_TINY.replace("pretrained=False", "pretrained=True"))
    env = {**os.environ, "STVFM_BACKBONE_WEIGHTS": str(files[0]), "HF_ENDPOINT": "https://127.0.0.1:9"}
    proc = subprocess.run([python(), "-m", "basicts.run", "-c", str(cfg), "--run-dir", "run"], capture_output=True,
                          text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ckpt = workdir / "run" / "STVFM_best_val_MAE.pt"
    expected = hashlib.sha256(files[0].read_bytes()).hexdigest()
    for weights, message in [(files[1], f"a file with sha256 {expected}"), (None, "No pretrained weights for backbone")]:
        run_env = {**env, "STVFM_BACKBONE_WEIGHTS": str(weights)} if weights else \
            {k: v for k, v in env.items() if k != "STVFM_BACKBONE_WEIGHTS"}
        proc = subprocess.run([python(), "-m", "basicts.run", "-c", str(cfg), "--eval", str(ckpt)],
                              capture_output=True, text=True, timeout=600, env=run_env)
        assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    case = reliability.FORECAST_STVFM  # the forecast checks the backbone as --eval does, and writes nothing
    shutil.copytree(workdir / "run", workdir / case.args[0])
    proc = subprocess.run([python(), "-m", "stvfm_plugin.forecast", *case.args, "--out", "f.csv"], capture_output=True,
                          text=True, timeout=600, env={**env, "STVFM_BACKBONE_WEIGHTS": str(files[1])})
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 2 and last.startswith(f"error: {case.message.removesuffix('...')}"), proc.stderr[-2000:]
    assert f"a file with sha256 {expected}" in last and not (workdir / "f.csv").exists()


def test_no_backbone_ablation_is_the_identity_and_still_trains():
    model = STVFM(tiny(7, vfm_layers=0)).eval()
    assert "NO backbone blocks (vfm_layers=0" in model.build_report[0] and len(model.vfm.vit.blocks) == 0
    tokens = torch.randn(2, model.layout.num_cells, model.vfm.embed_dim)
    assert torch.equal(model.vfm(tokens), tokens)
    x, ts, y, mask = batch(2, 12, 12, 7)
    out = model.train()(x, ts, y, mask, train=True)
    (out["prediction"].abs().mean() + out["aux_loss"]).backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize("case", reliability.STVFM, ids=lambda c: c.args[1])
def test_a_model_that_cannot_be_built_leaves_no_run_folder(tiny_dataset, workdir, case):
    cfg = write_config(workdir, STVFM_TINY)
    proc = subprocess.run([python(), "-m", "basicts.run", "-c", str(cfg), *case.args],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1] == f"error: {case.message}", proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert not [p for p in workdir.glob("checkpoints/**/*") if p.is_file()]  # no half-made run folder


def test_a_diverging_stvfm_run_stops_at_once_and_is_marked(tiny_dataset, workdir):
    (case,) = [c for c in reliability.STVFM_RUN if "lr=1e9" in c.args]
    proc = subprocess.run([python(), "-m", "basicts.run", "-c", str(write_config(workdir, STVFM_TINY)), *case.args],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1] == f"error: {case.message}", proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    status = json.loads((workdir / "r" / "status.json").read_text())
    assert (status["state"], status["epoch"], status["error"]) == ("diverged", 1, case.message)
    assert not (workdir / "r" / "test_metrics.json").exists()  # nothing scored as a result
