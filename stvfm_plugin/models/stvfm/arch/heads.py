"""Forecast and flow heads, and the auxiliary flow-forecasting loss."""
from typing import Optional

import torch
from basicts.metrics import masked_mae
from torch import nn


class CellHead(nn.Module):
    """Per-cell map from a token to the cell's future: `D -> T_out * K` (an MLP, or linear with hidden=0).

    Shapes:
        [B, S, D] -> [B, S, T_out * K]
    """

    def __init__(self, embed_dim: int, out_features: int, hidden: int = 256, dropout: float = 0.1) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(embed_dim)
        if hidden:
            self.proj = nn.Sequential(nn.Linear(embed_dim, hidden), nn.GELU(), nn.Dropout(dropout),
                                      nn.Linear(hidden, out_features))
        else:
            self.proj = nn.Linear(embed_dim, out_features)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.proj(self.norm(tokens))


def flow_forecasting_loss(pred_flow: torch.Tensor, target_flow: torch.Tensor,
                          mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Auxiliary objective: masked MAE between forecast and true future flow (normalised units).

    Shapes:
        pred_flow, target_flow, mask: [B, T_out, N] -> scalar
    """
    return masked_mae(pred_flow, target_flow, mask)
