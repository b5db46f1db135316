"""Forecast and flow heads, and the auxiliary flow-forecasting loss."""
from typing import Optional

import torch
from basicts.metrics import masked_mae
from einops import rearrange
from torch import nn


class CellHead(nn.Module):
    """Per-token head: the future of each of the token's `K` slots (nodes).

    With `hidden > 0`, every node gets its own forecast from three parts added in a hidden layer:
    its token after the VFM (the spatial context it shares with the other nodes of the token), its
    own input window (a node-level skip past the VFM), and a learnable embedding of the node; then
    `layers` residual MLP layers and `GELU -> hidden -> T_out`, all shared by the nodes. With
    `hidden = 0`, one linear map from the token, `D -> K * T_out`.

    Args:
        embed_dim: Token width `D`.
        window: Input steps `T` of a node.
        out_len: Forecast steps `T_out`.
        num_cells: Tokens `S`.
        slots: Slots (nodes) per token `K`.
        hidden: Hidden width (0: linear head).
        layers: Residual MLP layers after the sum (`h + W2 GELU(W1 h)`).
        dropout: Dropout in the residual layers and before the output layer.

    Shapes:
        tokens [B, S, D], cells [B, S, T * K] -> [B, S, T_out * K]
    """

    def __init__(self, embed_dim: int, window: int, out_len: int, num_cells: int, slots: int = 1,
                 hidden: int = 256, layers: int = 0, dropout: float = 0.1) -> None:
        super().__init__()
        self.slots = slots
        self.norm = nn.LayerNorm(embed_dim)
        if hidden:
            self.token_proj = nn.Linear(embed_dim, hidden)
            self.node_proj = nn.Linear(window, hidden)
            self.node_embed = nn.Parameter(torch.zeros(num_cells, slots, hidden))
            nn.init.trunc_normal_(self.node_embed, std=0.02)
            self.layers = nn.ModuleList(
                nn.Sequential(nn.Linear(hidden, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, hidden))
                for _ in range(layers))
            self.out = nn.Sequential(nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, out_len))
        else:
            self.token_proj = self.node_proj = self.node_embed = self.layers = None
            self.out = nn.Linear(embed_dim, out_len * slots)

    def forward(self, tokens: torch.Tensor, cells: torch.Tensor) -> torch.Tensor:
        x = self.norm(tokens)
        if self.token_proj is None:
            return self.out(x)  # [B, S, T_out * K], slot fastest (the layout's order)
        nodes = rearrange(cells, "b s (t k) -> b s k t", k=self.slots)  # [B, S, K, T]
        h = self.token_proj(x)[:, :, None] + self.node_proj(nodes) + self.node_embed  # [B, S, K, hidden]
        for layer in self.layers:
            h = h + layer(h)
        return rearrange(self.out(h), "b s k t -> b s (t k)")  # [B, S, T_out * K]


def flow_forecasting_loss(pred_flow: torch.Tensor, target_flow: torch.Tensor,
                          mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Auxiliary objective: masked MAE between forecast and true future flow (normalised units).

    Shapes:
        pred_flow, target_flow, mask: [B, T_out, N] -> scalar
    """
    return masked_mae(pred_flow, target_flow, mask)
