"""The frozen Vision Foundation Model: a timm ViT whose blocks process the adapter's tokens.

Weights come from, in order: an explicit file (`weights`), the environment variable
`STVFM_BACKBONE_WEIGHTS` (a file, or a folder holding `<alias>.safetensors` or
`<timm name>.safetensors`), the timm / Hugging Face hub (its local cache first), else a clear error.
Random weights only when `pretrained=False` is asked for.

Frozen means: no parameter requires a gradient, the module stays in eval mode whatever `train()`
says, and its weights are left out of `state_dict()` (they come from the weights source, so
checkpoints hold only what was trained); loading a checkpoint keeps the backbone as it is.
A checkpoint does remember which weights the backbone had (file name, the file's sha256 and a
sha256 of the tensors), and loading it into a model with other weights (or a random backbone)
is refused unless asked for (`allow_other_backbone`).
"""
from __future__ import annotations

import hashlib
import logging
import os
import sys
from pathlib import Path
from typing import Dict, Optional, Tuple

import timm
import torch
from timm.layers import resample_abs_pos_embed
from torch import nn

from ....errors import UserError
from ....files import file_sha256
from ....records import BackboneKind, BackboneSource
from ...frozen import hub_reachable, keep_frozen_out_of_state_dict
from .backbone_tuning import DeepPrompts, add_low_rank_adapters, train_layer_norms

#: short names of the design page -> timm names (with pretrained tag)
BACKBONE_ALIASES: Dict[str, str] = {
    "dinov2_vits14": "vit_small_patch14_dinov2.lvd142m",
    "dino_vits16": "vit_small_patch16_224.dino",
    "dino_vitb16": "vit_base_patch16_224.dino",
    "clip_vitb16": "vit_base_patch16_clip_224.openai",
    "deit_tiny": "deit_tiny_patch16_224.fb_in1k",
    "deit_small": "deit_small_patch16_224.fb_in1k",
}
WEIGHTS_ENV = "STVFM_BACKBONE_WEIGHTS"
#: what a checkpoint records as the weights of a random backbone
RANDOM_WEIGHTS = "RANDOM"
_logger = logging.getLogger(__name__)


def resolve_backbone(name: str) -> str:
    """The timm model name (with tag) of an alias or timm ViT name; unknown names raise `UserError`."""
    if name in BACKBONE_ALIASES:
        return BACKBONE_ALIASES[name]
    arch = name.split(".")[0]
    if timm.is_model(arch) and (arch.startswith(("vit_", "deit", "test_vit", "eva", "beit")) or "vit" in arch):
        return name
    raise UserError(f"Unknown backbone {name!r}. Use an alias ({', '.join(BACKBONE_ALIASES)}) or the name of a timm "
                    "ViT (e.g. vit_small_patch16_224.augreg_in21k; list them with timm.list_models('vit_*')).")


def tensors_sha256(module: nn.Module) -> str:
    """sha256 of a module's parameters and buffers (names, shapes and bytes), whatever file they came from."""
    digest = hashlib.sha256()
    for name, value in sorted(module.state_dict().items()):
        digest.update(f"{name}{tuple(value.shape)}{value.dtype}".encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def read_state_dict(path: Path) -> Dict[str, torch.Tensor]:
    """A state dict from a `.safetensors` file or a torch checkpoint (`model`/`state_dict` keys unwrapped)."""
    if not path.is_file():
        raise UserError(f"Backbone weights file {path} does not exist.")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # safetensors, pickle and zip readers raise many kinds on a damaged or foreign file
        raise UserError(f"Backbone weights file {path} cannot be read ({type(e).__name__}: "
                        f"{str(e).splitlines()[0][:200] if str(e) else 'no detail'}). Give a .safetensors file or a "
                        "torch state dict of the backbone in timm naming.") from None
    for key in ("model", "state_dict", "model_state_dict"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise UserError(f"Backbone weights file {path} holds no state dict of tensors. Give a .safetensors file or a "
                        "torch state dict of the backbone in timm naming.")
    return {k.removeprefix("module."): v for k, v in state.items()}


def load_into(model: nn.Module, state: Dict[str, torch.Tensor], source: str) -> None:
    """Load `state` into a timm ViT: timm's own key conversion and position-embedding resampling,
    classifier heads dropped, then a strict load that names the first mismatching keys."""
    module = sys.modules.get(type(model).__module__)
    filter_fn = getattr(module, "checkpoint_filter_fn", None)
    if filter_fn is not None:
        state = filter_fn(state, model)
    own = model.state_dict()
    state = {k: v for k, v in state.items() if not k.startswith(("head.", "fc_norm.", "head_drop."))
             or k in own}
    mismatched = [f"{k}: file {tuple(v.shape)} vs model {tuple(own[k].shape)}"
                  for k, v in state.items() if k in own and own[k].shape != v.shape]
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if mismatched or missing or unexpected:
        parts = []
        if mismatched:
            parts.append(f"shape mismatches: {'; '.join(mismatched[:3])}")
        if missing:
            parts.append(f"missing keys: {', '.join(missing[:5])}")
        if unexpected:
            parts.append(f"unexpected keys: {', '.join(unexpected[:5])}")
        raise UserError(f"Backbone weights from {source} do not fit {type(model).__name__} "
                        f"({model.default_cfg.get('architecture', '?')}): {' | '.join(parts)}. "
                        "Is the file for another model? Choose the matching `backbone`.")
    model.load_state_dict(state, strict=True)


def _cached_hub_file(timm_name: str) -> Optional[Path]:
    """The weights of `timm_name` in the local Hugging Face cache, if an earlier download put them there."""
    cfg = timm.models.get_pretrained_cfg(timm_name, allow_unregistered=False)
    repo = getattr(cfg, "hf_hub_id", None) if cfg is not None else None
    if not repo:
        return None
    from huggingface_hub import try_to_load_from_cache

    for filename in ("model.safetensors", "open_clip_pytorch_model.bin", "pytorch_model.bin"):
        found = try_to_load_from_cache(repo, filename)
        if isinstance(found, str):
            return Path(found)
    return None


def _env_weights(alias: str, timm_name: str) -> Optional[Path]:
    value = os.environ.get(WEIGHTS_ENV)
    if not value:
        return None
    path = Path(value).expanduser()
    if path.is_dir():
        for stem in (alias, timm_name, timm_name.split(".")[0]):
            for suffix in (".safetensors", ".pth", ".pt", ".bin"):
                if (path / f"{stem}{suffix}").is_file():
                    return path / f"{stem}{suffix}"
        return None
    if not path.is_file():
        where = "" if path.is_absolute() else f" (relative to the working directory {Path.cwd()})"
        raise UserError(f"{WEIGHTS_ENV}={value} is neither a file nor a folder{where}.")
    return path


def build_backbone(alias: str, weights: Optional[str], pretrained: bool, allow_random_fallback: bool = False
                   ) -> Tuple[nn.Module, BackboneSource]:
    """Create the timm ViT and load its weights.

    Returns:
        The model, and where its weights came from.
    """
    timm_name = resolve_backbone(alias)
    model = timm.create_model(timm_name, pretrained=False, num_classes=0)
    if not pretrained:
        return model, BackboneSource(BackboneKind.RANDOM, timm_name, "pretrained=False")
    path = Path(weights).expanduser() if weights else _env_weights(alias, timm_name)
    origin = "backbone_weights" if weights else WEIGHTS_ENV
    if path is None:
        path = _cached_hub_file(timm_name)
        origin = "Hugging Face cache"
    if path is not None:
        load_into(model, read_state_dict(path), str(path))
        return model, BackboneSource(BackboneKind.FILE, path.name, origin, file_sha256(path), path)
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    hub_error = f"the hub ({endpoint}) is not reachable from this machine"
    if hub_reachable(endpoint):
        try:
            model = timm.create_model(timm_name, pretrained=True, num_classes=0)
            cached = _cached_hub_file(timm_name)
            return model, BackboneSource(BackboneKind.HUB, timm_name, "hub",
                                         file_sha256(cached) if cached else None, cached)
        except Exception as e:  # network or missing-weights errors from huggingface_hub
            hub_error = f"the hub download failed ({type(e).__name__}: {e})"
    if allow_random_fallback:
        return model, BackboneSource(BackboneKind.RANDOM, timm_name, f"fallback: no weights found and {hub_error}")
    raise UserError(f"No pretrained weights for backbone {alias!r} ({timm_name}): no backbone_weights file, "
                    f"{WEIGHTS_ENV} is {'unset' if not os.environ.get(WEIGHTS_ENV) else 'without a matching file'}, "
                    f"and {hub_error}. Supply a local file with --set model_config.backbone_weights=PATH "
                    f"(safetensors or torch state dict in timm naming), or export {WEIGHTS_ENV}=FILE_OR_FOLDER, "
                    "or ask for a random backbone with --set model_config.pretrained=False.")


def _checkpoint_without_identity(state_dict: dict, prefix: str, *args) -> None:
    """Checkpoints written before the backbone identity was recorded still load (with a warning)."""
    state_dict.setdefault(f"{prefix}_extra_state", None)


class FrozenVFM(nn.Module):
    """A frozen timm ViT applied to token grids.

    The image patch embedding is bypassed: tokens enter the transformer blocks directly, after the
    ViT's prefix tokens (class / register tokens) and, optionally, its own position embedding
    resampled to the token grid. Only the first `num_layers` blocks are used; with 0 the whole frozen
    part is the identity (the "no backbone" ablation: adapters and heads alone, same widths).

    Args:
        backbone: The timm ViT (frozen here).
        grid_hw: Token grid `(H, W)`.
        num_layers: Blocks to use (None: all; 0: none, the identity).
        use_vfm_pos_embed: Add the ViT's position embedding, resampled to `(H, W)`.
        compile_blocks: Run the blocks through `torch.compile` (same outputs within float tolerance;
            each new input shape costs a compilation).
        source: Where the weights came from.
        allow_other_backbone: Accept checkpoints trained on other backbone weights (with a warning).
        prompts: Deep visual prompt tuning: learnable prompt tokens per block (0: none).
        lora_rank: Rank of low-rank adapters on every block's attention `qkv` (0: none).
        train_norms: Train the ViT's LayerNorms (the rest stays frozen).
        (The pretrained weights never change; see `backbone_tuning`.)
    """

    def __init__(self, backbone: nn.Module, grid_hw: Tuple[int, int], num_layers: Optional[int] = None,
                 use_vfm_pos_embed: bool = True, compile_blocks: bool = False,
                 source: Optional[BackboneSource] = None, allow_other_backbone: bool = False,
                 prompts: int = 0, lora_rank: int = 0, train_norms: bool = False) -> None:
        super().__init__()
        depth = len(backbone.blocks)
        if num_layers is not None and not 0 <= num_layers <= depth:
            raise UserError(f"vfm_layers={num_layers}: the backbone has {depth} blocks; choose 1..{depth} (or 0: no "
                            "backbone, the identity).")
        self.identity_only = num_layers == 0
        backbone.blocks = backbone.blocks[:depth if num_layers is None else num_layers]
        self.vit = backbone
        self.embed_dim = backbone.embed_dim
        self.grid_hw = tuple(grid_hw)
        self.vit.requires_grad_(False)
        self.vit.eval()
        prefix = self.vit.num_prefix_tokens
        pos = None
        if use_vfm_pos_embed and getattr(self.vit, "pos_embed", None) is not None:
            with torch.no_grad():
                skip = 0 if getattr(self.vit, "no_embed_class", False) else prefix
                pos = resample_abs_pos_embed(self.vit.pos_embed, new_size=list(self.grid_hw),
                                             num_prefix_tokens=skip)  # [1, skip + H * W, D]
        self.register_buffer("grid_pos_embed", pos[:, -grid_hw[0] * grid_hw[1]:] if pos is not None else None,
                             persistent=False)  # [1, H * W, D]
        self.register_buffer("prefix_pos_embed", pos[:, :pos.shape[1] - grid_hw[0] * grid_hw[1]]
                             if pos is not None and pos.shape[1] > grid_hw[0] * grid_hw[1] else None,
                             persistent=False)  # [1, prefix, D] or None
        keep_frozen_out_of_state_dict(self, "vit")
        self.identity = {  # kept in checkpoints: the format predates `BackboneSource`
            "backbone": self.vit.default_cfg.get("architecture", type(self.vit).__name__),
            "weights": RANDOM_WEIGHTS if source is None or source.is_random else (
                source.path.name if source.path else source.describe()),
            "file_sha256": source.sha256 if source is not None and source.path else None,
            "tensors_sha256": tensors_sha256(self.vit),
        }
        self.allow_other_backbone = allow_other_backbone
        self._register_load_state_dict_pre_hook(_checkpoint_without_identity)
        self.tuning = self._add_tuning(prompts, lora_rank, train_norms)  # after the identity: it names the frozen weights
        if compile_blocks and self.prompts is not None:
            raise UserError("compile_backbone=True cannot go with vpt_prompts: the prompts enter between the blocks.")
        # a compiled function, not a module: the blocks' parameters stay registered once, under `vit`
        self.compiled_blocks = torch.compile(self.vit.blocks.forward) if compile_blocks else None

    def _add_tuning(self, prompts: int, lora_rank: int, train_norms: bool) -> str:
        """Attach the trainable parts around the frozen weights; returns a description for the log."""
        self.prompts = None
        blocks = len(self.vit.blocks)
        if self.identity_only or not (prompts or lora_rank or train_norms):
            return "none" if not (prompts or lora_rank or train_norms) else "none (no blocks to tune)"
        parts = []
        if prompts:
            self.prompts = DeepPrompts(blocks, prompts, self.embed_dim, self.token_std())
            parts.append(f"{prompts} prompt tokens per block ({self.prompts.tokens.numel():,} parameters)")
        if lora_rank:
            parts.append(f"rank-{lora_rank} adapters on attention qkv ({add_low_rank_adapters(self.vit.blocks, lora_rank):,} "
                         "parameters)")
        if train_norms:
            parts.append(f"LayerNorms trained ({train_layer_norms(self.vit):,} parameters)")
        return "; ".join(parts)

    def get_extra_state(self) -> dict:
        return dict(self.identity)

    def set_extra_state(self, state: Optional[dict]) -> None:
        """Check that a checkpoint's backbone weights are this model's (the checkpoint does not hold them)."""
        if not state:
            _logger.warning("The checkpoint does not say which backbone weights it was trained with (written before "
                            "checkpoints recorded them): the backbone's weights cannot be checked.")
            return
        if state.get("tensors_sha256") == self.identity["tensors_sha256"]:
            return

        def describe(identity: dict) -> str:
            sha = identity.get("file_sha256")
            return f"{identity.get('weights')}" + (f" (sha256 {sha})" if sha else "")

        message = (f"This checkpoint was trained with the backbone {state.get('backbone')} with weights "
                   f"{describe(state)}, but the model now has {describe(self.identity)}.")
        if self.allow_other_backbone:
            _logger.warning(message + " Going on because allow_other_backbone=True.")
            return
        expected = state.get("file_sha256")
        raise UserError(message + " Load the same weights (" + (
            f"--set model_config.backbone_weights=FILE or {WEIGHTS_ENV}, a file with sha256 {expected}"
            if expected else ("--set model_config.pretrained=False and the same seed" if state.get("weights") == RANDOM_WEIGHTS
                              else "the same weights source")) +
            "), or score it with these weights on purpose with --set model_config.allow_other_backbone=True.")

    def train(self, mode: bool = True) -> "FrozenVFM":
        super().train(mode)
        self.vit.eval()  # frozen: dropout / drop-path stay off
        return self

    def set_fused_attention(self, on: bool) -> None:
        """Use timm's fused attention kernel (`on`) or attention as matmul + softmax in the frozen blocks (called on
        every forward pass: the modules are visited only when the choice changes)."""
        if getattr(self, "_fused_attention", None) is on:
            return
        for module in self.vit.modules():
            if hasattr(module, "fused_attn"):
                module.fused_attn = on
        self._fused_attention = on

    @property
    def num_prefix_tokens(self) -> int:
        return self.vit.num_prefix_tokens

    @torch.no_grad()
    def token_std(self) -> float:
        """Spread of the ViT's own patch embeddings on a standard-normal image (the adapter's target)."""
        patch = self.vit.patch_embed
        size = patch.img_size if patch.img_size is not None else (224, 224)
        generator = torch.Generator().manual_seed(0)
        image = torch.randn(1, 3, *size, generator=generator).to(next(self.vit.parameters()).device)
        return float(patch(image).std())

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Shapes: tokens [B, H * W, D] -> [B, H * W, D]"""
        if self.identity_only:
            return tokens
        x = tokens
        if self.grid_pos_embed is not None:
            x = x + self.grid_pos_embed
        prefix = []
        if getattr(self.vit, "cls_token", None) is not None:
            prefix.append(self.vit.cls_token.expand(x.shape[0], -1, -1))
        if getattr(self.vit, "reg_token", None) is not None:
            prefix.append(self.vit.reg_token.expand(x.shape[0], -1, -1))
        if prefix:
            prefix = torch.cat(prefix, dim=1)  # [B, P, D]
            if self.prefix_pos_embed is not None:
                prefix = prefix + self.prefix_pos_embed
            x = torch.cat([prefix, x], dim=1)  # [B, P + H * W, D]
        x = self.vit.norm_pre(x) if hasattr(self.vit, "norm_pre") else x
        if self.prompts is not None:
            x = self.prompts(x, self.vit.blocks, x.shape[1] - tokens.shape[1])
        else:
            x = self.compiled_blocks(x) if self.compiled_blocks is not None else self.vit.blocks(x)
        x = self.vit.norm(x)
        return x[:, x.shape[1] - tokens.shape[1]:]  # [B, H * W, D]
