"""Bilateral Cross-Prompt Coordination: each branch is conditioned on prompts pooled from the other."""
from typing import Optional, Tuple

import torch
from torch import nn


class CrossPrompt(nn.Module):
    """One direction: `K` learnable queries attention-pool the source branch into `K` prompt tokens;
    the target branch cross-attends to them; the result enters through a gated residual.

    Args:
        embed_dim: Token width `D`.
        num_prompts: Prompt tokens `K`.
        num_heads: Attention heads (must divide `D`).
        gate_init: Initial gate value (`tanh(gate)` scales the residual; small = start near the
            uncoordinated model).
    """

    def __init__(self, embed_dim: int, num_prompts: int = 4, num_heads: int = 4, gate_init: float = 0.1) -> None:
        super().__init__()
        self.queries = nn.Parameter(torch.randn(num_prompts, embed_dim) * 0.02)
        self.norm_source = nn.LayerNorm(embed_dim)
        self.norm_target = nn.LayerNorm(embed_dim)
        self.pool = nn.MultiheadAttention(embed_dim, num_heads, batch_first=True)
        self.attend = nn.MultiheadAttention(embed_dim, num_heads, batch_first=True)
        self.gate = nn.Parameter(torch.full((embed_dim,), float(gate_init)))

    def forward(self, target: torch.Tensor, source: torch.Tensor,
                source_padding: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Shapes:
            target: [B, S, D], source: [B, S', D], source_padding: [S'] (True = ignore) -> [B, S, D]
        """
        source = self.norm_source(source)
        queries = self.queries.expand(source.shape[0], -1, -1)  # [B, K, D]
        mask = None if source_padding is None else source_padding[None].expand(source.shape[0], -1)
        prompts, _ = self.pool(queries, source, source, key_padding_mask=mask, need_weights=False)  # [B, K, D]
        update, _ = self.attend(self.norm_target(target), prompts, prompts, need_weights=False)  # [B, S, D]
        return target + torch.tanh(self.gate) * update


class BilateralCrossPromptCoordination(nn.Module):
    """Flow -> raw (dynamics for the forecast) and raw -> flow (stable spatial context for the flow)."""

    def __init__(self, embed_dim: int, num_prompts: int = 4, num_heads: int = 4, gate_init: float = 0.1) -> None:
        super().__init__()
        self.flow_to_raw = CrossPrompt(embed_dim, num_prompts, num_heads, gate_init)
        self.raw_to_flow = CrossPrompt(embed_dim, num_prompts, num_heads, gate_init)

    def forward(self, raw: torch.Tensor, flow: torch.Tensor,
                padding: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        """Shapes: raw, flow: [B, S, D], padding: [S] -> ([B, S, D], [B, S, D])"""
        return self.flow_to_raw(raw, flow, padding), self.raw_to_flow(flow, raw, padding)
