"""ST flow: first-order temporal differences, the dynamic branch of ST-VFM."""
from typing import Optional, Tuple

import torch


def st_flow(x: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """Temporal differences of a (normalised) series along its time axis `dim`, `F_t = X_t - X_{t-1}`, `F_1 = 0`.

    Shapes:
        x: [B, T, N] (or any shape with T at `dim`) -> the same shape
    """
    t = x.shape[dim]
    return torch.cat([torch.zeros_like(x.narrow(dim, 0, 1)), x.narrow(dim, 1, t - 1) - x.narrow(dim, 0, t - 1)], dim=dim)


def future_flow(last_input: torch.Tensor, targets: torch.Tensor,
                targets_mask: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """Targets of the auxiliary flow forecast: `dY_1 = Y_1 - X_T`, `dY_t = Y_t - Y_{t-1}`.

    A difference is valid only where both of its ends are valid targets (for `dY_1`, the target end:
    BasicTS does not tell the model which inputs were missing).

    Shapes:
        last_input: [B, 1, N], targets: [B, T, N], targets_mask: [B, T, N] -> flow [B, T, N], mask [B, T, N]
    """
    previous = torch.cat([last_input, targets[:, :-1]], dim=1)
    flow = targets - previous
    if targets_mask is None:
        return flow, torch.ones_like(flow, dtype=torch.bool)
    mask = targets_mask.bool()
    previous_mask = torch.cat([torch.ones_like(mask[:, :1]), mask[:, :-1]], dim=1)
    return flow, mask & previous_mask
