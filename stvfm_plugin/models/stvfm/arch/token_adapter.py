"""Temporal-Aware Token Adapter: a cell's input window -> one token in the frozen VFM's space."""
from typing import Optional

import torch
from torch import nn

from ...dropout import UniformDropout


class CalendarEmbedding(nn.Module):
    """Adds learnable time-of-day and day-of-week embeddings of the last input step to every row of `x` (either
    may be off).

    Args:
        embed_dim: Width `D` of the embeddings.
        steps_per_day: Time-of-day slots.
        use_time_of_day / use_day_of_week: Which calendar features to embed.
        std: Initial spread of the embeddings.

    Shapes:
        x: [B, M, D], timestamps: [B, T, 2] (fractions in [0, 1)) -> [B, M, D]
    """

    def __init__(self, embed_dim: int, steps_per_day: Optional[int], use_time_of_day: bool = True,
                 use_day_of_week: bool = True, std: float = 0.02) -> None:
        super().__init__()
        self.steps_per_day = steps_per_day
        self.time_of_day = nn.Embedding(steps_per_day, embed_dim) if use_time_of_day else None
        self.day_of_week = nn.Embedding(7, embed_dim) if use_day_of_week else None
        for table in (self.time_of_day, self.day_of_week):
            if table is not None:
                nn.init.trunc_normal_(table.weight, std=std)

    def forward(self, x: torch.Tensor, timestamps: torch.Tensor) -> torch.Tensor:
        last = timestamps[:, -1]  # [B, 2]
        if self.time_of_day is not None:
            slot = (last[:, 0] * self.steps_per_day).long().clamp(0, self.steps_per_day - 1)
            x = x + self.time_of_day(slot)[:, None]  # [B, 1, D]
        if self.day_of_week is not None:
            x = x + self.day_of_week((last[:, 1] * 7).long().clamp(0, 6))[:, None]  # [B, 1, D]
        return x


def _calendar_moved(state_dict: dict, prefix: str, *args) -> None:
    """Checkpoints written before the calendar embeddings moved into `CalendarEmbedding` still load."""
    for table in ("time_of_day", "day_of_week"):
        old = f"{prefix}{table}.weight"
        if old in state_dict:
            state_dict[f"{prefix}calendar.{table}.weight"] = state_dict.pop(old)


class TemporalAwareTokenAdapter(nn.Module):
    """Embeds each cell's window, adds temporal context and a learnable position, scaled for the VFM.

    A token is `MLP(window)` (with `K > 1` slots per token, the window is followed by the `K` slots'
    validity flags, so that an empty slot's zeros are not read as data), optionally less the window's mean token over
    the occupied cells (`center_tokens`), layer-normalised and scaled to `token_std` (the spread of the VFM's own
    patch embeddings, so the frozen blocks see in-distribution inputs), plus embeddings of the last
    input step's time of day and day of week, plus a learnable position per grid cell. Empty grid
    cells get a learnable pad token.

    Args:
        window: Values per cell and window, `T * K`.
        slots: Slots `K` per token (nodes grouped into one token).
        embed_dim: Token width `D` of the VFM.
        num_cells: Grid cells `S = H * W`.
        hidden: Hidden width of the window MLP.
        steps_per_day: Time-of-day slots.
        token_std: Target standard deviation of the tokens' entries.
        use_time_of_day / use_day_of_week: Temporal context switches.
        use_learned_pos_embed: Add a learnable `[S, D]` positional embedding.
        use_pad_token: Give empty cells a learnable pad token (only when the grid has empty cells).
        dropout: Dropout on the window MLP.
        center_tokens: Subtract the window's mean token (over occupied cells) before the norm.
    """

    def __init__(self, window: int, embed_dim: int, num_cells: int, slots: int = 1, hidden: int = 256,
                 steps_per_day: int = 288,
                 token_std: float = 1.0, use_time_of_day: bool = True, use_day_of_week: bool = True,
                 use_learned_pos_embed: bool = True, use_pad_token: bool = True, dropout: float = 0.1,
                 center_tokens: bool = False) -> None:
        super().__init__()
        self.center_tokens = center_tokens
        self.slot_flags = slots > 1
        self.value_embed = nn.Sequential(
            nn.Linear(window + (slots if self.slot_flags else 0), hidden), nn.GELU(), UniformDropout(dropout), nn.Linear(hidden, embed_dim))
        self.norm = nn.LayerNorm(embed_dim)
        with torch.no_grad():
            self.norm.weight.fill_(token_std)
        self.calendar = CalendarEmbedding(embed_dim, steps_per_day, use_time_of_day, use_day_of_week, 0.02 * token_std)
        self.pos_embed = nn.Parameter(torch.zeros(num_cells, embed_dim)) if use_learned_pos_embed else None
        self.pad_token = nn.Parameter(torch.zeros(embed_dim)) if use_pad_token else None
        if self.pos_embed is not None:
            nn.init.trunc_normal_(self.pos_embed, std=0.02 * token_std)
        self._register_load_state_dict_pre_hook(_calendar_moved)

    def forward(self, cells: torch.Tensor, timestamps: Optional[torch.Tensor], slot_valid: torch.Tensor) -> torch.Tensor:
        """Shapes:
            cells: [B, S, T * K], timestamps: [B, T, 2] (fractions in [0, 1)), slot_valid: [S, K] -> tokens [B, S, D]
        """
        if self.slot_flags:
            flags = slot_valid.to(cells.dtype).expand(cells.shape[0], -1, -1)  # [B, S, K]
            cells = torch.cat([cells, flags], dim=-1)  # [B, S, T * K + K]
        tokens = self.value_embed(cells)  # [B, S, D]
        occupied = slot_valid.any(dim=1)[None, :, None]  # [1, S, 1]
        if self.center_tokens:
            weights = occupied.to(tokens.dtype) / occupied.sum().clamp_min(1)  # [1, S, 1]
            tokens = tokens - (tokens * weights).sum(dim=1, keepdim=True)  # [B, S, D]
        tokens = self.norm(tokens)  # [B, S, D]
        if self.pad_token is not None:
            tokens = torch.where(occupied, tokens, self.pad_token.to(tokens.dtype))
        if timestamps is not None:
            tokens = self.calendar(tokens, timestamps)
        if self.pos_embed is not None:
            tokens = tokens + self.pos_embed
        return tokens
