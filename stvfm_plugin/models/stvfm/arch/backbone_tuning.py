"""Parameter-efficient tuning of the frozen VFM: its pretrained weights never change, a few new or chosen
parameters around them train.

- Deep visual prompt tuning (Jia et al., ECCV 2022): `P` learnable prompt tokens enter every block; the
  previous block's prompt outputs are dropped, so each block reads its own prompts.
- Low-rank adapters (Hu et al., ICLR 2022) on the attention's `qkv` projection: `W x + B A x` with `B`
  starting at zero, so training starts from the frozen model.
- The blocks' LayerNorms trained, everything else frozen (the "frozen pretrained transformer" recipe of
  Lu et al., 2021, that GPT4TS follows).

The trainable parameters live in the checkpoint (`keep_frozen_out_of_state_dict` keeps whatever needs a
gradient), the frozen weights stay out of it.
"""
from __future__ import annotations

import math

import torch
from torch import nn


class LowRankAdapter(nn.Module):
    """A frozen linear map plus a trainable rank-`r` update, `base(x) + (alpha / r) B A x`.

    Args:
        base: The frozen linear map (kept as it is).
        rank: Rank `r` of the update.
        alpha: Scale numerator (`alpha = r` gives scale 1).

    Shapes:
        x: [..., D_in] -> [..., D_out]
    """

    def __init__(self, base: nn.Linear, rank: int, alpha: float = None) -> None:
        super().__init__()
        self.base = base
        self.down = nn.Linear(base.in_features, rank, bias=False)
        self.up = nn.Linear(rank, base.out_features, bias=False)
        nn.init.kaiming_uniform_(self.down.weight, a=math.sqrt(5))
        nn.init.zeros_(self.up.weight)
        self.scale = (alpha if alpha is not None else rank) / rank

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + self.scale * self.up(self.down(x))


def add_low_rank_adapters(blocks: nn.Sequential, rank: int) -> int:
    """Wrap every block's attention `qkv` projection in a `LowRankAdapter`; returns the trainable parameters added."""
    added = 0
    for block in blocks:
        adapter = LowRankAdapter(block.attn.qkv, rank)
        block.attn.qkv = adapter
        added += sum(p.numel() for p in (adapter.down.weight, adapter.up.weight))
    return added


def train_layer_norms(vit: nn.Module) -> int:
    """Let the blocks' and the final LayerNorms of a frozen ViT train; returns their parameter count."""
    count = 0
    for module in vit.modules():
        if isinstance(module, nn.LayerNorm):
            for p in module.parameters():
                p.requires_grad_(True)
                count += p.numel()
    return count


class DeepPrompts(nn.Module):
    """Learnable prompt tokens for every block (deep VPT), inserted after the ViT's prefix tokens.

    Args:
        num_blocks: Blocks `L` that each get their own prompts.
        num_prompts: Prompt tokens `P` per block.
        embed_dim: Token width `D`.
        std: Initial spread of the prompts (that of the tokens they join).

    Shapes:
        x: [B, prefix + S, D] -> [B, prefix + S, D] (the prompts are added and removed inside)
    """

    def __init__(self, num_blocks: int, num_prompts: int, embed_dim: int, std: float = 1.0) -> None:
        super().__init__()
        self.num_prompts = num_prompts
        self.tokens = nn.Parameter(torch.zeros(num_blocks, num_prompts, embed_dim))
        nn.init.trunc_normal_(self.tokens, std=std, a=-2 * std, b=2 * std)

    def forward(self, x: torch.Tensor, blocks: nn.Sequential, prefix: int) -> torch.Tensor:
        for i, block in enumerate(blocks):
            prompts = self.tokens[i].expand(x.shape[0], -1, -1)  # [B, P, D]
            keep_from = prefix + (self.num_prompts if i else 0)  # the previous block's prompts are dropped
            x = block(torch.cat([x[:, :prefix], prompts, x[:, keep_from:]], dim=1))  # [B, prefix + P + S, D]
        return torch.cat([x[:, :prefix], x[:, prefix + self.num_prompts:]], dim=1)  # [B, prefix + S, D]
