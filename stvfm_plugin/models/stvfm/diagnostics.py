"""Where a trained ST-VFM's forecast comes from: mean-ablations, gate values and token statistics.

Each ablation replaces one part's output by its mean over the validation windows (so the part still
adds its average, but nothing that depends on the input) and reports the change in validation MAE:
a part the forecast does not use costs nothing when ablated. The token statistics compare what the
adapter feeds the frozen blocks with the patch tokens of images (what the backbone saw in
pretraining), and how much the frozen blocks change each.

Used by `python -m stvfm_plugin.diagnose`; every function takes the model and already normalised
batches, so it works on any dataset.
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Callable, Dict, Iterator, List, Optional, Sequence

import torch
from torch import nn

from .arch.stvfm_arch import STVFM

#: a validation batch: inputs / inputs_timestamps / targets_mask as the model sees them, targets in data units, and
#: optionally inputs_mask (False = a missing input reading)
Batch = Dict[str, torch.Tensor]
#: prediction (normalised) and batch -> absolute errors in data units [B, T_out, N] (0 where not scored)
Scorer = Callable[[torch.Tensor, Batch], torch.Tensor]


class MeanOutput:
    """Forward hook that first records a module's mean output over the batches' windows, then (armed) returns that
    mean instead of the output. `groups` splits a batch that stacks several branches (`[G * B, ...]`) so that
    each keeps its own mean.

    Shapes:
        output [G * B, ...] -> mean [G, ...]; armed: [G * B, ...] filled with the group means
    """

    def __init__(self, module: nn.Module, groups: int = 1) -> None:
        self.groups, self.total, self.count, self.armed = groups, None, 0, False
        self.handle = module.register_forward_hook(self)

    def __call__(self, module: nn.Module, args: tuple, output: torch.Tensor) -> Optional[torch.Tensor]:
        grouped = output.reshape(self.groups, -1, *output.shape[1:])  # [G, B, ...]
        if not self.armed:
            batch_sum = grouped.sum(dim=1).double()  # [G, ...]
            self.total = batch_sum if self.total is None else self.total + batch_sum
            self.count += grouped.shape[1]
            return None
        mean = (self.total / self.count).to(output.dtype)  # [G, ...]
        return mean[:, None].expand_as(grouped).reshape(output.shape)


@contextmanager
def _hooked(module: nn.Module, hook: Callable) -> Iterator[None]:
    handle = module.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


@torch.inference_mode()
def validation_mae(model: STVFM, batches: Sequence[Batch], score: Scorer) -> Dict[str, float]:
    """Masked MAE in data units over `batches` (BasicTS's weighting: every scored reading counts once): over all
    scored readings, and, when the batches carry `inputs_mask`, over the readings of nodes whose input window is
    complete and of those with a missing input reading."""
    sums: Dict[str, List[float]] = {}
    for batch in batches:
        errors = score(model(batch["inputs"], batch["inputs_timestamps"]), batch)  # [B, T_out, N]
        scored = batch["targets_mask"].bool()
        groups = {"all": scored}
        if batch.get("inputs_mask") is not None:
            incomplete = (~batch["inputs_mask"].bool()).any(dim=1, keepdim=True)  # [B, 1, N]
            groups.update({"complete inputs": scored & ~incomplete, "missing inputs": scored & incomplete})
        for name, where in groups.items():
            total = sums.setdefault(name, [0.0, 0.0])
            total[0] += float(errors[where].double().sum())
            total[1] += float(where.sum())
    return {name: err / n for name, (err, n) in sums.items() if n}


def _ablation_parts(model: STVFM) -> Dict[str, tuple]:
    """Label -> (module, groups) of every part whose output the mean-ablation replaces."""
    branches = 2 if model.flow_adapter is not None else 1
    parts = {
        "frozen VFM blocks' output (the adapter skip stays)": (model.vfm, branches),
        "adapter tokens of the raw branch (into the VFM and the skip)": (model.raw_adapter, 1),
    }
    head = model.forecast_head
    if head.token_proj is not None:
        parts["forecast head: token context"] = (head.token_proj, 1)
        parts["forecast head: the node's own input window"] = (head.node_proj, 1)
    return parts


@torch.inference_mode()
def ablations(model: STVFM, batches: Sequence[Batch], score: Scorer) -> List[dict]:
    """Validation MAE of the model, then of each part replaced by its mean (and of the flow branch's prompts to the
    raw branch switched off, and the head's node embedding replaced by its mean over nodes)."""
    model.eval()
    base = validation_mae(model, batches, score)
    rows = []

    def row(label: str, mae: Dict[str, float]) -> None:
        rows.append({"ablation": label, "val_mae": mae["all"], "change": mae["all"] - base["all"],
                     "by_inputs": {k: {"val_mae": v, "change": v - base[k]} for k, v in mae.items() if k != "all"}})

    row("none (the trained model)", base)

    for label, (module, groups) in _ablation_parts(model).items():
        hook = MeanOutput(module, groups)
        try:
            validation_mae(model, batches, score)  # records the mean
            hook.armed = True
            row(label + " -> its mean", validation_mae(model, batches, score))
        finally:
            hook.handle.remove()
    if model.cross_prompt is not None:
        with _hooked(model.cross_prompt.flow_to_raw, lambda module, args, output: args[0]):
            row("cross-prompt flow -> raw switched off (gate 0)", validation_mae(model, batches, score))
    embed = model.forecast_head.node_embed
    if embed is not None:
        kept = embed.detach().clone()
        embed.data.copy_(kept.mean(dim=0, keepdim=True).expand_as(kept))
        try:
            row("forecast head: node embedding -> its mean over nodes", validation_mae(model, batches, score))
        finally:
            embed.data.copy_(kept)
    return rows


def gate_values(model: STVFM) -> Dict[str, dict]:
    """`tanh(gate)` of each cross-prompt direction: how strongly each branch's prompts enter the other."""
    if model.cross_prompt is None:
        return {}
    found = {}
    for name in ("flow_to_raw", "raw_to_flow"):
        gate = torch.tanh(getattr(model.cross_prompt, name).gate.detach()).float()
        found[name] = {"mean": float(gate.mean()), "mean_abs": float(gate.abs().mean()),
                       "max_abs": float(gate.abs().max())}
    return found


def token_stats(tokens: torch.Tensor) -> dict:
    """Statistics of token sets `[B, S, D]`: mean L2 norm, spread of the entries, mean offset of the dimensions,
    and how alike the tokens of one set are (mean cosine similarity of distinct tokens)."""
    tokens = tokens.double()
    unit = nn.functional.normalize(tokens, dim=-1)
    similarity = unit @ unit.transpose(1, 2)  # [B, S, S]
    s = tokens.shape[1]
    off_diagonal = (similarity.sum(dim=(1, 2)) - similarity.diagonal(dim1=1, dim2=2).sum(dim=1)) / max(s * (s - 1), 1)
    return {"tokens": s, "norm": float(tokens.norm(dim=-1).mean()), "entry_std": float(tokens.std()),
            "dim_mean_abs": float(tokens.mean(dim=(0, 1)).abs().mean()), "cosine": float(off_diagonal.mean())}


def block_update(vfm: nn.Module, x: torch.Tensor) -> float:
    """How much the frozen blocks change their input: `||blocks(x) - x|| / ||x||`, averaged over tokens.

    Shapes:
        x: [B, P + S, D] (prefix and grid tokens as they enter the blocks) -> scalar
    """
    y = vfm.vit.blocks(x)
    return float(((y - x).norm(dim=-1) / x.norm(dim=-1).clamp_min(1e-12)).mean())


@torch.inference_mode()
def attention_spread(vfm: nn.Module, x: torch.Tensor) -> Dict[str, float]:
    """How the frozen blocks' attention spreads over the grid tokens, averaged over blocks, heads and grid tokens:
    the weight a token keeps on itself, the weight on the prefix (class / register) tokens, and the effective number
    of tokens attended (`exp` of the attention entropy).

    Shapes:
        x: [B, P + S, D] (the tokens as they enter the first block) -> scalars
    """
    prefix = vfm.num_prefix_tokens
    found = {"self": [], "prefix": [], "effective_tokens": []}
    for block in vfm.vit.blocks:
        attn = block.attn
        qkv = attn.qkv(block.norm1(x)).reshape(x.shape[0], x.shape[1], 3, attn.num_heads, -1).permute(2, 0, 3, 1, 4)
        q, k = attn.q_norm(qkv[0]), attn.k_norm(qkv[1])  # [B, H, L, d]
        weights = ((q * attn.scale) @ k.transpose(-2, -1)).softmax(dim=-1)[:, :, prefix:]  # [B, H, S, L]: grid queries
        diagonal = torch.diagonal(weights[..., prefix:], dim1=-2, dim2=-1)  # [B, H, S]
        found["self"].append(float(diagonal.mean()))
        found["prefix"].append(float(weights[..., :prefix].sum(dim=-1).mean()))
        entropy = -(weights * weights.clamp_min(1e-12).log()).sum(dim=-1)  # [B, H, S]
        found["effective_tokens"].append(float(entropy.exp().mean()))
        x = block(x)
    return {k: sum(v) / len(v) for k, v in found.items()}


def natural_image(size: Sequence[int], seed: int = 0) -> torch.Tensor:
    """An image with the 1/f amplitude spectrum of natural images, ImageNet-normalised per channel.

    Shapes:
        -> [1, 3, H, W]
    """
    h, w = size
    generator = torch.Generator().manual_seed(seed)
    fy = torch.fft.fftfreq(h)[:, None]
    fx = torch.fft.rfftfreq(w)[None, :]
    amplitude = 1.0 / torch.sqrt(fy ** 2 + fx ** 2).clamp_min(1.0 / max(h, w))  # [H, W // 2 + 1]
    phase = torch.rand(3, *amplitude.shape, generator=generator) * 2 * math.pi
    image = torch.fft.irfft2(amplitude * torch.exp(1j * phase), s=(h, w))  # [3, H, W]
    image = (image - image.mean(dim=(1, 2), keepdim=True)) / image.std(dim=(1, 2), keepdim=True)
    return image[None].float()


@torch.inference_mode()
def image_tokens(vfm: nn.Module, image: torch.Tensor) -> torch.Tensor:
    """The ViT's own tokens of an image as they enter its blocks (patch embedding, prefix, position embedding).

    Shapes:
        image [1, 3, H, W] -> [1, P + S, D]
    """
    vit = vfm.vit
    x = vit._pos_embed(vit.patch_embed(image))
    return vit.norm_pre(vit.patch_drop(x)) if hasattr(vit, "patch_drop") else vit.norm_pre(x)


@torch.inference_mode()
def token_report(model: STVFM, batches: Sequence[Batch], image_size: Optional[Sequence[int]] = None) -> Dict[str, dict]:
    """Statistics of the raw branch's tokens where they enter the frozen blocks, and of image tokens for reference
    (a 1/f natural-like image and a standard-normal one, the latter what `match_token_stats` scales to)."""
    vfm = model.vfm
    seen: List[torch.Tensor] = []

    def grab(module: nn.Module, args: tuple) -> None:
        seen.append(args[0])

    report: Dict[str, dict] = {}
    if vfm.identity_only:
        return report
    handle = vfm.vit.blocks.register_forward_pre_hook(grab)
    try:
        for batch in batches[:4]:
            model(batch["inputs"], batch["inputs_timestamps"])
    finally:
        handle.remove()
    grid = vfm.grid_hw[0] * vfm.grid_hw[1]
    raw = torch.cat([x[: x.shape[0] // (2 if model.flow_adapter is not None else 1)] for x in seen])  # [B, P + S, D]
    report["adapter tokens (raw branch, + positions)"] = {**token_stats(raw[:, -grid:]), "block_update": block_update(vfm, raw),
                                                         "attention": attention_spread(vfm, raw)}
    size = image_size or tuple(vfm.vit.patch_embed.img_size)
    for label, image in (("1/f natural-like image", natural_image(size)),
                         ("standard-normal image", torch.randn(1, 3, *size, generator=torch.Generator().manual_seed(0)))):
        tokens = image_tokens(vfm, image.to(raw.device))
        report[f"image tokens: {label}"] = {**token_stats(tokens[:, vfm.num_prefix_tokens:]),
                                            "block_update": block_update(vfm, tokens),
                                            "attention": attention_spread(vfm, tokens)}
    return report


@torch.inference_mode()
def head_parts(model: STVFM, batches: Sequence[Batch]) -> Dict[str, float]:
    """Spread (std over windows and nodes, averaged over hidden units) of the three addends of the forecast head's
    hidden sum: the node's token context, its own window and its node embedding."""
    head = model.forecast_head
    if head.token_proj is None:
        return {}
    parts: Dict[str, List[torch.Tensor]] = {"token context": [], "own window": []}
    hooks = [head.token_proj.register_forward_hook(
                 lambda m, a, out: parts["token context"].append(out[:, head.layout.node_token].flatten(0, 1))),
             head.node_proj.register_forward_hook(lambda m, a, out: parts["own window"].append(out.flatten(0, 1)))]
    try:
        for batch in batches:
            model(batch["inputs"], batch["inputs_timestamps"])
    finally:
        for hook in hooks:
            hook.remove()
    spread = {name: float(torch.cat(values).std(dim=0).mean()) for name, values in parts.items()}  # [B * N, hidden]
    spread["node embedding"] = float(head.node_embed.detach().std(dim=0).mean())
    return spread
