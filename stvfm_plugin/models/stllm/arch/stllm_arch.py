"""ST-LLM (Liu et al., MDM 2024), written from the paper.

One token per node: the node's input window, its time-of-day and day-of-week embeddings and a
learned node embedding are fused into the language model's width; a frozen pretrained language
model with partially frozen attention (the last U layers train their attention, every layer its
normalisation, plus the position embeddings) mixes the node tokens; a linear layer maps each
node's output token to its forecast.
"""
from __future__ import annotations

from typing import Optional

import torch
from einops import rearrange
from torch import nn

from ....errors import UserError
from ....data.facts import calendar_switches, require_nodes
from ...language_backbone import LanguageBackbone
from ..config.stllm_config import STLLMConfig


class STLLM(nn.Module):
    """ST-LLM on BasicTS inputs.

    Args:
        config: All settings; see `STLLMConfig`.
        backbone: A prepared `LanguageBackbone` (None: built from `config.backbone`).

    Shapes:
        inputs: [B, T, N] (or [B, T, N, C]: channel 0 is used), inputs_timestamps: [B, T, 2]
        (time of day, day of week, each in [0, 1)) -> prediction [B, T_out, N]
    """

    def __init__(self, config: STLLMConfig, backbone: Optional[LanguageBackbone] = None) -> None:
        super().__init__()
        self.config = config
        self.backbone = backbone or LanguageBackbone.from_name(config.backbone, config.llm_layers, config.pretrained)
        self.backbone.unfreeze(["norm", "position", "attention"], last_layers=config.unfrozen_layers)
        nodes = require_nodes(config, "ST-LLM")
        if self.backbone.max_positions is not None and nodes > self.backbone.max_positions:
            raise UserError(f"ST-LLM: {nodes} nodes, but {config.backbone} has "
                            f"{self.backbone.max_positions} positions (one token per node).")
        time_of_day, day_of_week = calendar_switches(config, "ST-LLM")
        c = config.embed_dim
        self.value_embed = nn.Linear(config.input_len, c)
        self.time_of_day = nn.Embedding(config.steps_per_day, c) if time_of_day else None
        self.day_of_week = nn.Embedding(7, c) if day_of_week else None
        self.node_embed = nn.Parameter(torch.empty(nodes, c))
        nn.init.xavier_uniform_(self.node_embed)
        parts = 2 + int(time_of_day) + int(day_of_week)
        self.fusion = nn.Linear(parts * c, self.backbone.embed_dim)
        self.head = nn.Sequential(nn.Dropout(config.dropout), nn.Linear(self.backbone.embed_dim, config.output_len))
        self.build_report = [f"ST-LLM {line}" for line in self.backbone.describe()] + [
            f"ST-LLM unfrozen attention in the last {config.unfrozen_layers} layer(s)"]
        self.backbone_report = [f"ST-LLM {line}" for line in self.backbone.identity()]

    def forward(self, inputs: torch.Tensor, inputs_timestamps: torch.Tensor) -> torch.Tensor:
        values = inputs[..., 0] if inputs.dim() == 4 else inputs  # [B, T, N]
        b, _, n = values.shape
        last = inputs_timestamps[:, -1]  # [B, 2]
        parts = [self.value_embed(rearrange(values, "b t n -> b n t")),  # [B, N, C]
                 self.node_embed[None].expand(b, -1, -1)]  # [B, N, C]
        if self.time_of_day is not None:
            slot = (last[:, 0] * self.config.steps_per_day).long().clamp(0, self.config.steps_per_day - 1)  # [B]
            parts.append(self.time_of_day(slot)[:, None].expand(b, n, -1))  # [B, N, C]
        if self.day_of_week is not None:
            day = (last[:, 1] * 7).long().clamp(0, 6)  # [B]
            parts.append(self.day_of_week(day)[:, None].expand(b, n, -1))  # [B, N, C]
        h = self.backbone(self.fusion(torch.cat(parts, dim=-1)))  # [B, N, D]
        return rearrange(self.head(h), "b n t -> b t n")  # [B, T_out, N]
