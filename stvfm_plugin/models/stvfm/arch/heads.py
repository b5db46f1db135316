"""Forecast and flow heads, and the auxiliary flow-forecasting loss."""
from typing import Optional

import torch
from basicts.metrics import masked_mae
from einops import rearrange
from torch import nn

from ...dropout import UniformDropout
from .spatial_layout import SpatialLayout
from .token_adapter import CalendarEmbedding


class NodeHead(nn.Module):
    """The forecast of every node from its token (a token holds up to `K` nodes).

    With `hidden > 0`, each node's forecast comes from three parts added in a hidden layer: its
    token after the VFM (the spatial context it shares with the other nodes of the token), its own
    input window (a node-level skip past the VFM) and a learnable embedding of the node; then
    `layers` residual MLP layers and `GELU -> hidden -> T_out`, all shared by the nodes. Only real
    nodes are computed, never the empty slots of a token. With `hidden = 0`, one linear map from
    the token, `D -> K * T_out`, read back per node. With calendar features on, time-of-day / day-of-week
    embeddings of the last input step join the sum (node embedding, own window and calendar: an STID-like
    identity path that the token context adds to).

    Args:
        layout: The spatial layout (which token and slot holds each node).
        embed_dim: Token width `D`.
        window: Input steps `T` of a node.
        out_len: Forecast steps `T_out`.
        hidden: Hidden width (0: linear head).
        layers: Residual MLP layers after the sum (`h + W2 GELU(W1 h)`).
        dropout: Dropout in the residual layers and before the output layer.
        steps_per_day / use_time_of_day / use_day_of_week: Calendar embeddings in the hidden sum (off by default).

    Shapes:
        tokens [B, S, D], series [B, T, N], timestamps [B, T, 2] or None -> [B, T_out, N]
    """

    def __init__(self, layout: SpatialLayout, embed_dim: int, window: int, out_len: int, hidden: int = 256,
                 layers: int = 0, dropout: float = 0.1, steps_per_day: Optional[int] = None,
                 use_time_of_day: bool = False, use_day_of_week: bool = False) -> None:
        super().__init__()
        self.layout = layout
        self.norm = nn.LayerNorm(embed_dim)
        if hidden:
            self.token_proj = nn.Linear(embed_dim, hidden)
            self.node_proj = nn.Linear(window, hidden)
            self.node_embed = nn.Parameter(torch.zeros(layout.num_nodes, hidden))
            nn.init.trunc_normal_(self.node_embed, std=0.02)
            self.layers = nn.ModuleList(
                nn.Sequential(nn.Linear(hidden, hidden), nn.GELU(), UniformDropout(dropout), nn.Linear(hidden, hidden))
                for _ in range(layers))
            self.out = nn.Sequential(nn.GELU(), UniformDropout(dropout), nn.Linear(hidden, out_len))
        else:
            self.token_proj = self.node_proj = self.node_embed = self.layers = None
            self.out = nn.Linear(embed_dim, out_len * layout.cell_size)
        self.calendar = CalendarEmbedding(hidden, steps_per_day, use_time_of_day, use_day_of_week) \
            if hidden and (use_time_of_day or use_day_of_week) else None

    def forward(self, tokens: torch.Tensor, series: torch.Tensor, timestamps: Optional[torch.Tensor] = None
                ) -> torch.Tensor:
        x = self.norm(tokens)
        if self.token_proj is None:
            return self.layout.from_cells(self.out(x))  # [B, S, T_out * K] -> [B, T_out, N]
        context = self.token_proj(x)[:, self.layout.node_token]  # [B, N, hidden]: each node's token
        h = context + self.node_proj(rearrange(series, "b t n -> b n t")) + self.node_embed  # [B, N, hidden]
        if self.calendar is not None and timestamps is not None:
            h = self.calendar(h, timestamps)
        for layer in self.layers:
            h = h + layer(h)
        return rearrange(self.out(h), "b n t -> b t n")  # [B, T_out, N]


def flow_forecasting_loss(pred_flow: torch.Tensor, target_flow: torch.Tensor,
                          mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Auxiliary objective: masked MAE between forecast and true future flow (normalised units).

    Shapes:
        pred_flow, target_flow, mask: [B, T_out, N] -> scalar
    """
    return masked_mae(pred_flow, target_flow, mask)
