"""GPT4TS / One-Fits-All (Zhou et al., NeurIPS 2023), written from the paper.

Each series (node) is forecast on its own (channel independence): instance-normalised, cut into
patches, linearly embedded, passed through the first k layers of a frozen pretrained language
model whose normalisation layers and position embeddings are trained, then flattened and mapped
to the forecast by one linear layer.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from ...language_backbone import LanguageBackbone
from ..config.gpt4ts_config import GPT4TSConfig


class GPT4TS(nn.Module):
    """GPT4TS on BasicTS inputs.

    Args:
        config: All settings; see `GPT4TSConfig`.
        backbone: A prepared `LanguageBackbone` (None: built from `config.backbone`).

    Shapes:
        inputs: [B, T, N] (or [B, T, N, C]: channel 0 is used) -> prediction [B, T_out, N]
    """

    def __init__(self, config: GPT4TSConfig, backbone: Optional[LanguageBackbone] = None) -> None:
        super().__init__()
        self.config = config
        self.backbone = backbone or LanguageBackbone.from_name(config.backbone, config.llm_layers, config.pretrained)
        self.backbone.unfreeze(["norm", "position"])
        dim = self.backbone.embed_dim
        self.num_patches = (config.input_len + config.patch_stride - config.patch_len) // config.patch_stride + 1
        self.patch_embed = nn.Linear(config.patch_len, dim)
        self.head = nn.Sequential(nn.Dropout(config.dropout), nn.Linear(self.num_patches * dim, config.output_len))
        self.build_report = [f"GPT4TS {line}" for line in self.backbone.describe()] + [
            f"GPT4TS patches: {self.num_patches} of length {config.patch_len}, stride {config.patch_stride}"]
        self.backbone_report = [f"GPT4TS {line}" for line in self.backbone.identity()]

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        values = inputs[..., 0] if inputs.dim() == 4 else inputs  # [B, T, N]
        b = values.shape[0]
        x = rearrange(values, "b t n -> (b n) t")  # [B * N, T]
        if self.config.use_revin:
            mean = x.mean(dim=1, keepdim=True).detach()
            std = torch.sqrt(x.var(dim=1, keepdim=True, unbiased=False) + 1e-5).detach()
            x = (x - mean) / std
        x = F.pad(x.unsqueeze(1), (0, self.config.patch_stride), mode="replicate").squeeze(1)  # [B * N, T + S]
        patches = x.unfold(1, self.config.patch_len, self.config.patch_stride)  # [B * N, P, patch_len]
        h = self.backbone(self.patch_embed(patches))  # [B * N, P, D]
        y = self.head(rearrange(h, "bn p d -> bn (p d)"))  # [B * N, T_out]
        if self.config.use_revin:
            y = y * std + mean
        return rearrange(y, "(b n) t -> b t n", b=b)  # [B, T_out, N]
