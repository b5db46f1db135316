"""ST-VFM's tuning switches around the frozen backbone (deep prompts, low-rank adapters, trained LayerNorms) and the
STID-like calendar path of the heads: the pretrained weights never change, gradients reach only what is meant to
train, checkpoints hold the trained parts and none of the frozen weights."""
from __future__ import annotations

import pytest
import torch

from stvfm_plugin.errors import UserError
from stvfm_plugin.models.stvfm import STVFM
from stvfm_plugin.models.stvfm.arch.backbone_tuning import DeepPrompts, LowRankAdapter

from test_stvfm import batch, tiny, weights_file  # noqa: F401  (a fixture)

#: switch -> the names (within `vfm.`) of the parameters it adds or unfreezes
SWITCHES = {
    "vpt_prompts": (dict(vpt_prompts=3), lambda name: name == "prompts.tokens"),
    "lora_rank": (dict(lora_rank=2), lambda name: name.endswith(("qkv.down.weight", "qkv.up.weight"))),
    "train_backbone_norms": (dict(train_backbone_norms=True),
                             lambda name: ".norm" in name or name.startswith(("vit.norm.", "vit.norm1", "vit.norm2"))),
}


def _pretrained_tensors(model: STVFM) -> dict:
    return {k: p.detach().clone() for k, p in model.vfm.vit.named_parameters() if not p.requires_grad}


@pytest.mark.parametrize("name", SWITCHES)
@pytest.mark.parametrize("n,p", [(7, 1), (10, 2)])
def test_tuning_switch_trains_only_its_parts_and_keeps_the_frozen_weights(name, n, p, weights_file):
    switch, is_tuned = SWITCHES[name]
    switch = dict(switch, pretrained=True, backbone_weights=str(weights_file[0]))  # the same frozen weights twice
    torch.manual_seed(0)
    model = STVFM(tiny(n, patch_size=p, **switch)).train()
    tuned = {k: q for k, q in model.vfm.named_parameters() if is_tuned(k)}
    assert tuned and all(q.requires_grad for q in tuned.values())
    assert {k for k, q in model.vfm.named_parameters() if q.requires_grad} == set(tuned)
    before = _pretrained_tensors(model)
    x, ts, y, mask = batch(3, 12, 12, n)
    optimizer = torch.optim.Adam([q for q in model.parameters() if q.requires_grad], lr=1e-2)
    for _ in range(2):  # LoRA's up-projection starts at zero: its down-projection gets a gradient from step 2 on
        optimizer.zero_grad()
        out = model(x, ts, y, mask, train=True)
        (torch.nn.functional.l1_loss(out["prediction"], y) + out["aux_loss"]).backward()
        no_grad = [k for k, q in model.named_parameters() if q.requires_grad and (q.grad is None or not q.grad.abs().sum() > 0)]
        optimizer.step()
    assert not no_grad, no_grad
    assert all(q.grad is None for q in model.vfm.vit.parameters() if not q.requires_grad)
    after = _pretrained_tensors(model)
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    state = model.state_dict()
    in_checkpoint = {k.removeprefix("vfm.") for k in state if k.startswith("vfm.") and k != "vfm._extra_state"}
    assert in_checkpoint == set(tuned)  # the trained parts, none of the frozen weights
    torch.manual_seed(7)
    clone = STVFM(tiny(n, patch_size=p, **switch))
    clone.load_state_dict(state, strict=True)
    model.eval(), clone.eval()
    assert torch.equal(model(x, ts), clone(x, ts))


def test_low_rank_adapter_starts_as_the_frozen_map():
    base = torch.nn.Linear(8, 24)
    adapter = LowRankAdapter(base, rank=2)
    x = torch.randn(5, 8)
    assert torch.equal(adapter(x), base(x))
    adapter.up.weight.data.fill_(0.1)
    assert not torch.allclose(adapter(x), base(x))


@pytest.mark.parametrize("prefix,prompts,blocks", [(1, 2, 2), (0, 3, 1), (2, 1, 3)])
def test_deep_prompts_enter_every_block_and_leave_the_shape(prefix, prompts, blocks):
    seen = []

    class Record(torch.nn.Module):
        def forward(self, x):
            seen.append(x.clone())
            return x + 1.0

    module = DeepPrompts(blocks, prompts, embed_dim=4)
    x = torch.randn(2, prefix + 5, 4)
    out = module(x, torch.nn.Sequential(*[Record() for _ in range(blocks)]), prefix)
    assert out.shape == x.shape
    assert all(s.shape == (2, prefix + prompts + 5, 4) for s in seen)
    for i, s in enumerate(seen):  # each block reads its own prompts, the previous block's are dropped
        assert torch.equal(s[:, prefix:prefix + prompts], module.tokens[i].detach().expand(2, -1, -1))
    assert torch.allclose(out, x + blocks)


def test_tuning_with_no_blocks_is_said_and_adds_nothing():
    model = STVFM(tiny(7, vfm_layers=0, lora_rank=2, vpt_prompts=2, train_backbone_norms=True))
    assert model.vfm.tuning == "none (no blocks to tune)"
    assert not any(q.requires_grad for q in model.vfm.parameters())
    assert "ST-VFM backbone tuning: none (no blocks to tune)" in model.build_report


@pytest.mark.parametrize("temporal_context", [True, False])
def test_head_calendar_makes_the_forecast_depend_on_the_time_of_day(temporal_context):
    torch.manual_seed(0)
    x, ts, _, _ = batch(2, 12, 12, 7)
    later = ts.clone()
    later[..., 0] = (later[..., 0] + 0.25) % 1.0
    for head_calendar in (False, True):
        model = STVFM(tiny(7, head_calendar=head_calendar, use_temporal_context=temporal_context,
                           use_day_of_week=True)).eval()
        assert (model.forecast_head.calendar is not None) == head_calendar
        changed = not torch.equal(model(x, ts), model(x, later))
        assert changed == (head_calendar or temporal_context)


@pytest.mark.parametrize("slots,empty", [(1, None), (3, 2)])
def test_centred_tokens_carry_nothing_that_every_occupied_cell_of_a_window_shares(slots, empty):
    from stvfm_plugin.models.stvfm.arch.token_adapter import TemporalAwareTokenAdapter

    torch.manual_seed(0)
    b, s, window, dim = 2, 5, 12 * slots, 16
    slot_valid = torch.ones(s, slots, dtype=torch.bool)
    if empty is not None:
        slot_valid[empty] = False  # an empty cell: left out of the mean, given the pad token
    # float64: the norm divides a centred token by sqrt(var + eps), so float32 rounding of "zero" (~1e-7) comes out
    # near 1e-5 and varies with the machine's summation order; in float64 it stays near 1e-13, far below atol
    same = torch.randn(b, 1, window, dtype=torch.float64).expand(b, s, window).clone()  # every cell of a window alike
    if empty is not None:
        same[:, empty] = torch.randn(b, window, dtype=torch.float64)  # an empty cell's values do not enter the mean
    differ = torch.rand(b, s, window, dtype=torch.float64)  # cells that differ, around a shared positive level
    occupied = slot_valid.any(dim=1)
    alike = {}
    for centre in (False, True):
        torch.manual_seed(1)  # the same adapter weights
        adapter = TemporalAwareTokenAdapter(window, dim, s, slots=slots, use_learned_pos_embed=False,
                                            use_pad_token=empty is not None, center_tokens=centre).double().eval()
        tokens = adapter(same, None, slot_valid)[:, occupied]  # [B, occupied S, D]
        assert torch.allclose(tokens, torch.zeros_like(tokens), atol=1e-9) == centre  # the norm's bias: zero
        tokens = adapter(differ, None, slot_valid)[:, occupied]
        cosine = torch.nn.functional.cosine_similarity(tokens[:, :, None], tokens[:, None], dim=-1)  # [B, S, S]
        alike[centre] = cosine[:, ~torch.eye(cosine.shape[1], dtype=torch.bool)].mean().item()  # two distinct cells
    assert alike[False] > 0.5 and alike[True] < 0.0, alike  # centred tokens of a window are not alike


@pytest.mark.parametrize("n,p", [(7, 1), (10, 2)])
def test_centred_tokens_train_every_part_and_keep_the_shapes(n, p):
    torch.manual_seed(0)
    model = STVFM(tiny(n, patch_size=p, center_tokens=True)).train()
    x, ts, y, mask = batch(3, 12, 12, n)
    out = model(x, ts, y, mask, train=True)
    assert out["prediction"].shape == y.shape
    (torch.nn.functional.l1_loss(out["prediction"], y) + out["aux_loss"]).backward()
    no_grad = [k for k, q in model.named_parameters() if q.requires_grad and (q.grad is None or not q.grad.abs().sum() > 0)]
    assert not no_grad, no_grad
    assert "center_tokens=True" in " ".join(model.build_report)


@pytest.mark.parametrize("kw,message", [
    (dict(vpt_prompts=-1), "vpt_prompts=-1: give 0 (off) or a positive number."),
    (dict(lora_rank=-2), "lora_rank=-2: give 0 (off) or a positive number."),
    (dict(head_calendar=True, head_hidden=0), "head_calendar=True needs head_hidden > 0"),
])
def test_tuning_config_errors(kw, message):
    with pytest.raises(UserError, match=message.replace("(", "\\(").replace(")", "\\)")):
        tiny(7, **kw)


def test_compiled_blocks_refuse_prompts():
    with pytest.raises(UserError, match="compile_backbone=True cannot go with vpt_prompts"):
        STVFM(tiny(7, vpt_prompts=2, compile_backbone=True))


def test_checkpoints_from_before_the_calendar_module_still_load(weights_file):
    same = dict(use_day_of_week=True, pretrained=True, backbone_weights=str(weights_file[0]))
    torch.manual_seed(0)
    model = STVFM(tiny(7, **same)).eval()
    old = {k.replace("calendar.", ""): v for k, v in model.state_dict().items()}  # the key names before the move
    assert "raw_adapter.time_of_day.weight" in old
    torch.manual_seed(1)
    clone = STVFM(tiny(7, **same)).eval()
    clone.load_state_dict(old, strict=True)
    x, ts, _, _ = batch(2, 12, 12, 7)
    assert torch.equal(model(x, ts), clone(x, ts))
