"""Graph WaveNet (Wu et al., "Graph WaveNet for Deep Spatial-Temporal Graph Modeling", IJCAI 2019).

Written from the paper: a stack of layers, each a gated dilated causal convolution over time
(tanh filter x sigmoid gate) followed by a diffusion graph convolution over the forward and
backward transition matrices of the road graph plus a self-adaptive adjacency; residual and skip
connections; the summed skips go through two 1x1 convolutions to all `T_out` steps at once.
"""
from __future__ import annotations

from typing import List, Optional

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from ....errors import UserError
from ....data.facts import require_nodes
from ..config.gwnet_config import GWNetConfig


def transition_matrices(adj: np.ndarray) -> List[torch.Tensor]:
    """Forward and backward random-walk matrices `D_out^-1 A` and `D_in^-1 A^T` (rows of isolated nodes stay 0)."""
    adj = torch.as_tensor(np.asarray(adj, dtype=np.float32))
    mats = []
    for a in (adj, adj.T):
        degree = a.sum(dim=1, keepdim=True)
        mats.append(torch.where(degree > 0, a / degree.clamp_min(1e-12), torch.zeros_like(a)))
    return mats


class DiffusionGraphConv(nn.Module):
    """Diffusion convolution `sum_k sum_s P_s^k X W_sk` over several supports, as one 1x1 convolution.

    Args:
        in_channels: Input channels C.
        out_channels: Output channels.
        num_supports: Transition matrices given to `forward` (fixed and adaptive).
        order: Diffusion steps K.
        dropout: Dropout on the output.

    Shapes:
        x: [B, C, N, T], supports: S x [N, N] -> [B, C_out, N, T]
    """

    def __init__(self, in_channels: int, out_channels: int, num_supports: int, order: int = 2,
                 dropout: float = 0.3) -> None:
        super().__init__()
        self.order = order
        self.mlp = nn.Conv2d(in_channels * (1 + num_supports * order), out_channels, kernel_size=1)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, supports: List[torch.Tensor]) -> torch.Tensor:
        terms = [x]
        for support in supports:
            h = x
            for _ in range(self.order):
                h = torch.einsum("nm,bcmt->bcnt", support, h)  # node n gathers from its neighbours m
                terms.append(h)
        return self.dropout(self.mlp(torch.cat(terms, dim=1)))  # [B, C_out, N, T]


class GWNetLayer(nn.Module):
    """One Graph WaveNet layer: gated dilated temporal convolution, skip output, graph convolution, residual.

    Shapes:
        x: [B, C_res, N, T] -> x': [B, C_res, N, T - dilation * (kernel - 1)], skip: [B, C_skip, N, 1]
        (the skip of the last step only: the output layers read nothing else)
    """

    def __init__(self, config: GWNetConfig, dilation: int, num_supports: int) -> None:
        super().__init__()
        conv = dict(kernel_size=(1, config.kernel_size), dilation=(1, dilation))
        self.filter_conv = nn.Conv2d(config.residual_channels, config.dilation_channels, **conv)
        self.gate_conv = nn.Conv2d(config.residual_channels, config.dilation_channels, **conv)
        self.skip_conv = nn.Conv2d(config.dilation_channels, config.skip_channels, kernel_size=1)
        self.graph_conv = DiffusionGraphConv(config.dilation_channels, config.residual_channels, num_supports,
                                             config.diffusion_order, config.dropout)
        self.norm = nn.BatchNorm2d(config.residual_channels)

    def forward(self, x: torch.Tensor, supports: List[torch.Tensor]):
        h = torch.tanh(self.filter_conv(x)) * torch.sigmoid(self.gate_conv(x))  # [B, C_dil, N, T']
        skip = self.skip_conv(h[..., -1:])  # [B, C_skip, N, 1]: 1x1, so the last step's is the full skip's last step
        h = self.graph_conv(h, supports) + x[..., -h.shape[-1]:]  # [B, C_res, N, T']
        return self.norm(h), skip


class GWNet(nn.Module):
    """Graph WaveNet on BasicTS inputs.

    Args:
        config: All settings; see `GWNetConfig`.
        adj: The road graph `[N, N]` (the runner passes the dataset's), needed when `use_graph`.

    Shapes:
        inputs: [B, T, N] (or [B, T, N, C]: channel 0 is used), inputs_timestamps: [B, T, >=1]
        -> prediction [B, T_out, N]
    """

    def __init__(self, config: GWNetConfig, adj: Optional[np.ndarray] = None) -> None:
        super().__init__()
        self.config = config
        n = require_nodes(config, "GWNet")
        self.use_time_of_day = config.use_time_of_day is not False
        fixed: List[torch.Tensor] = []
        if config.use_graph:
            if adj is None:
                raise UserError("GWNet: use_graph=True needs a road graph, but the dataset has none. Prepare the dataset "
                                "with a graph (python -m stvfm_plugin.data prepare ... --graph FILE) or set "
                                "model_config.use_graph=False to use the adaptive adjacency only.")
            if adj.shape != (n, n):
                raise UserError(f"GWNet: the graph is {adj.shape[0]} x {adj.shape[1]}, but num_features={n}.")
            fixed = transition_matrices(np.asarray(adj, dtype=np.float32))
        for i, support in enumerate(fixed):
            self.register_buffer(f"support_{i}", support)
        self.num_fixed = len(fixed)
        if config.use_adaptive_adj:
            self.node_source = nn.Parameter(torch.randn(n, config.adaptive_embed_dim))
            self.node_target = nn.Parameter(torch.randn(config.adaptive_embed_dim, n))
        num_supports = self.num_fixed + int(config.use_adaptive_adj)

        dilations = [2 ** i for _ in range(config.num_blocks) for i in range(config.layers_per_block)]
        self.receptive_field = 1 + sum(d * (config.kernel_size - 1) for d in dilations)
        in_channels = 2 if self.use_time_of_day else 1
        self.start_conv = nn.Conv2d(in_channels, config.residual_channels, kernel_size=1)
        self.layers = nn.ModuleList(GWNetLayer(config, d, num_supports) for d in dilations)
        self.end_conv = nn.Sequential(
            nn.ReLU(), nn.Conv2d(config.skip_channels, config.end_channels, kernel_size=1),
            nn.ReLU(), nn.Conv2d(config.end_channels, config.output_len, kernel_size=1))

    def supports(self) -> List[torch.Tensor]:
        """The transition matrices of this forward pass: the road graph's, then the adaptive one."""
        mats = [getattr(self, f"support_{i}") for i in range(self.num_fixed)]
        if self.config.use_adaptive_adj:
            mats.append(F.softmax(F.relu(self.node_source @ self.node_target), dim=1))  # [N, N]
        return mats

    def forward(self, inputs: torch.Tensor, inputs_timestamps: Optional[torch.Tensor] = None) -> torch.Tensor:
        values = inputs[..., 0] if inputs.dim() == 4 else inputs  # [B, T, N]
        channels = [values]
        if self.use_time_of_day:
            if inputs_timestamps is None:
                raise UserError("GWNet: use_time_of_day=True needs inputs_timestamps (use_timestamps=True in the "
                                "config), or set model_config.use_time_of_day=False.")
            channels.append(inputs_timestamps[..., :1].expand_as(values))  # [B, T, N]
        x = rearrange(torch.stack(channels, dim=-1), "b t n c -> b c n t")  # [B, C_in, N, T]
        if x.shape[-1] < self.receptive_field:
            x = F.pad(x, (self.receptive_field - x.shape[-1], 0))  # [B, C_in, N, R]
        x = self.start_conv(x)  # [B, C_res, N, R]
        supports = self.supports()
        skip = 0
        for layer in self.layers:
            x, s = layer(x, supports)
            skip = s + skip  # [B, C_skip, N, 1]: the skips of the last step, summed
        out = self.end_conv(skip)  # [B, T_out, N, 1]
        return out[..., 0]  # [B, T_out, N]
