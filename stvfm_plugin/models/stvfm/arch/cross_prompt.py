"""Bilateral Cross-Prompt Coordination: each branch is conditioned on prompts pooled from the other."""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn


class NarrowAttention(nn.Module):
    """Multi-head attention computed in a narrow width `d < D` (few parameters, `4 * D * d`).

    Shapes:
        query: [B, Q, D], key_value: [B, S, D], key_padding: [B, S] (True = ignore) -> [B, Q, D]
    """

    def __init__(self, embed_dim: int, attn_dim: int = 64, num_heads: int = 4) -> None:
        super().__init__()
        if attn_dim % num_heads:
            raise ValueError(f"prompt_dim={attn_dim} must be divisible by prompt_heads={num_heads}.")
        self.num_heads = num_heads
        self.q = nn.Linear(embed_dim, attn_dim)
        self.kv = nn.Linear(embed_dim, 2 * attn_dim)
        self.out = nn.Linear(attn_dim, embed_dim)

    def forward(self, query: torch.Tensor, key_value: torch.Tensor,
                key_padding: Optional[torch.Tensor] = None) -> torch.Tensor:
        q = rearrange(self.q(query), "b q (h d) -> b h q d", h=self.num_heads)
        k, v = rearrange(self.kv(key_value), "b s (two h d) -> two b h s d", two=2, h=self.num_heads)
        mask = None if key_padding is None else ~key_padding[:, None, None, :]  # [B, 1, 1, S], True = attend
        x = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # [B, H, Q, d / H]
        return self.out(rearrange(x, "b h q d -> b q (h d)"))


class CrossPrompt(nn.Module):
    """One direction: `K` learnable queries attention-pool the source branch into `K` prompt tokens;
    the target branch cross-attends to them; the result enters through a gated residual.

    Args:
        embed_dim: Token width `D`.
        num_prompts: Prompt tokens `K`.
        num_heads: Attention heads (must divide `attn_dim`).
        attn_dim: Width in which both attentions are computed.
        gate_init: Initial gate value (`tanh(gate)` scales the residual; small = start near the
            uncoordinated model).
    """

    def __init__(self, embed_dim: int, num_prompts: int = 4, num_heads: int = 4, attn_dim: int = 64,
                 gate_init: float = 0.1) -> None:
        super().__init__()
        self.queries = nn.Parameter(torch.randn(num_prompts, embed_dim) * 0.02)
        self.norm_source = nn.LayerNorm(embed_dim)
        self.norm_target = nn.LayerNorm(embed_dim)
        self.pool = NarrowAttention(embed_dim, attn_dim, num_heads)
        self.attend = NarrowAttention(embed_dim, attn_dim, num_heads)
        self.gate = nn.Parameter(torch.full((embed_dim,), float(gate_init)))

    def forward(self, target: torch.Tensor, source: torch.Tensor,
                source_padding: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Shapes:
            target: [B, S, D], source: [B, S', D], source_padding: [S'] (True = ignore) -> [B, S, D]
        """
        source = self.norm_source(source)
        queries = self.queries.expand(source.shape[0], -1, -1)  # [B, K, D]
        mask = None if source_padding is None else source_padding[None].expand(source.shape[0], -1)
        prompts = self.pool(queries, source, mask)  # [B, K, D]
        update = self.attend(self.norm_target(target), prompts)  # [B, S, D]
        return target + torch.tanh(self.gate) * update


class BilateralCrossPromptCoordination(nn.Module):
    """Flow -> raw (dynamics for the forecast) and raw -> flow (stable spatial context for the flow)."""

    def __init__(self, embed_dim: int, num_prompts: int = 4, num_heads: int = 4, attn_dim: int = 64,
                 gate_init: float = 0.1) -> None:
        super().__init__()
        self.flow_to_raw = CrossPrompt(embed_dim, num_prompts, num_heads, attn_dim, gate_init)
        self.raw_to_flow = CrossPrompt(embed_dim, num_prompts, num_heads, attn_dim, gate_init)

    def forward(self, raw: torch.Tensor, flow: torch.Tensor,
                padding: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        """Shapes: raw, flow: [B, S, D], padding: [S] -> ([B, S, D], [B, S, D])"""
        return self.flow_to_raw(raw, flow, padding), self.raw_to_flow(flow, raw, padding)
