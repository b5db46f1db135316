"""ST-VFM: reprogramming a frozen Vision Foundation Model for spatio-temporal forecasting.

Pipeline (one module per box of the paper's figure):

    inputs X [B, T, N] -> ST flow F = dX                        (st_flow)
    X, F -> cells on an H x W token grid                         (spatial_layout)
         -> Temporal-Aware Token Adapter, one per branch         (token_adapter)
         -> frozen VFM blocks, both branches in one batch        (frozen_vfm)
         -> Bilateral Cross-Prompt Coordination                  (cross_prompt)
         -> forecast head -> Y [B, T_out, N]; flow head -> dY    (heads)
    loss = masked MAE(Y) + flow_loss_weight * masked MAE(dY)     (heads.flow_forecasting_loss, training only)
"""
from __future__ import annotations

import logging
from typing import Dict, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from einops import rearrange
from torch import nn

from ..config.stvfm_config import STVFMConfig
from ...precision import autocast
from ....data.facts import calendar_switches, require_nodes
from .cross_prompt import BilateralCrossPromptCoordination
from .frozen_vfm import FrozenVFM, build_backbone
from .heads import NodeHead, flow_forecasting_loss
from .spatial_layout import SpatialLayout
from .st_flow import future_flow, st_flow
from .token_adapter import TemporalAwareTokenAdapter

_logger = logging.getLogger(__name__)


class STVFM(nn.Module):
    """ST-VFM (arXiv 2507.11558) on BasicTS inputs.

    Args:
        config: All settings; see `STVFMConfig`.
        adj: The dataset's graph `[N, N]` (spectral layout), or None.
        coords: Node coordinates `[N, 2]` (coordinate layout), or None.
        grid_shape: `H, W` of a grid dataset (its cells are the nodes), or None.
        channel_names: The dataset's channels, each cell's side by side in `grid_shape` (None: one); for the log.
        (The runner passes the dataset's own; see `stvfm_plugin.runner`.)

    Shapes:
        inputs: [B, T, N] (or [B, T, N, C]: channel 0 is used), inputs_timestamps: [B, T, 2],
        targets / targets_mask: [B, T_out, N] -> prediction [B, T_out, N]
    """

    def __init__(self, config: STVFMConfig, adj: Optional[np.ndarray] = None, coords: Optional[np.ndarray] = None,
                 grid_shape: Optional[Sequence[int]] = None, channel_names: Optional[Sequence[str]] = None) -> None:
        super().__init__()
        self.config = config
        time_of_day, day_of_week = calendar_switches(config, "ST-VFM")
        self.layout = SpatialLayout(require_nodes(config, "ST-VFM"), config.layout, adj, coords, grid_shape, config.patch_size,
                                    config.max_tokens, len(channel_names or ()) or 1)
        backbone, source = build_backbone(config.backbone, config.backbone_weights, config.pretrained,
                                          config.allow_random_fallback)
        self.vfm = FrozenVFM(backbone, self.layout.grid_hw, config.vfm_layers, config.use_vfm_pos_embed,
                             config.compile_backbone, source, config.allow_other_backbone,
                             config.vpt_prompts, config.lora_rank, config.train_backbone_norms)
        dim, cells, window = self.vfm.embed_dim, self.layout.num_cells, config.input_len * self.layout.cell_size
        token_std = self.vfm.token_std() if config.match_token_stats else 1.0

        def adapter() -> TemporalAwareTokenAdapter:
            return TemporalAwareTokenAdapter(
                window, dim, cells, self.layout.cell_size, config.adapter_hidden, config.steps_per_day, token_std,
                use_time_of_day=config.use_temporal_context and time_of_day,
                use_day_of_week=config.use_temporal_context and day_of_week,
                use_learned_pos_embed=config.use_learned_pos_embed,
                use_pad_token=not bool(self.layout.cell_valid.all()), dropout=config.dropout,
                center_tokens=config.center_tokens)

        def head() -> NodeHead:
            calendar = dict(steps_per_day=config.steps_per_day, use_time_of_day=time_of_day,
                            use_day_of_week=day_of_week) if config.head_calendar else {}
            return NodeHead(self.layout, dim, config.input_len, config.output_len, config.head_hidden,
                            config.head_layers, config.dropout, **calendar)

        self.raw_adapter = adapter()
        self.forecast_head = head()
        self.flow_adapter = adapter() if config.use_flow_branch else None
        self.cross_prompt = BilateralCrossPromptCoordination(
            dim, config.num_prompts, config.prompt_heads, config.prompt_dim, config.gate_init) if config.use_cross_prompt else None
        self.flow_head = head() if config.use_flow_branch and config.flow_loss_weight > 0 else None

        self.backbone_source = source
        self.run_warnings = []
        if source.is_random and config.pretrained:
            self.run_warnings.append(f"ST-VFM runs with a RANDOM backbone ({source.describe()}): its metrics do not measure a "
                                     "pretrained VFM.")
        trainable = sum(p.numel() for p in self.parameters() if p.requires_grad)
        frozen = sum(p.numel() for p in self.parameters() if not p.requires_grad)
        self.build_report = [
            f"ST-VFM backbone: {config.backbone} ({backbone.default_cfg.get('architecture', '?')}), " +
            (f"{len(self.vfm.vit.blocks)} blocks used, width {dim}" if not self.vfm.identity_only
             else f"NO backbone blocks (vfm_layers=0: the frozen part is the identity), width {dim}"),
            f"ST-VFM backbone weights: {source.describe()}",
            f"ST-VFM parameters: {trainable:,} trainable, {frozen:,} frozen",
            f"ST-VFM backbone tuning: {self.vfm.tuning}",
            f"ST-VFM token grid: {self.layout.describe()}",
            f"ST-VFM precision: {config.precision}" + ("" if config.precision == "fp32" else
                f" ({'the frozen blocks' if config.precision_scope == 'backbone' else 'the whole forward pass'}; "
                "weights, optimizer and outputs fp32)"),
            "ST-VFM components: " + ", ".join(f"{k}={getattr(config, k)}" for k in (
                "use_flow_branch", "use_cross_prompt", "flow_loss_weight", "use_temporal_context",
                "use_time_of_day", "use_day_of_week", "use_learned_pos_embed", "use_vfm_pos_embed", "match_token_stats",
                "center_tokens", "use_adapter_skip", "head_calendar")),
        ]
        self.backbone_report = self.build_report[:2]  # the backbone and where its weights came from
        for line in self.build_report:
            _logger.info(line)

    def forward_features(self, x: torch.Tensor, timestamps: Optional[torch.Tensor]
                         ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Tokens of both branches after the frozen VFM and the cross-prompt coordination.

        Shapes:
            x: [B, T, N], timestamps: [B, T, 2] -> raw [B, S, D], flow [B, S, D] or None
        """
        valid = self.layout.slot_valid
        raw_cells = self.layout.to_cells(x)  # [B, S, T * K]
        raw_tokens = self.raw_adapter(raw_cells, timestamps, valid)  # [B, S, D]
        if self.flow_adapter is None:
            raw = self._frozen_blocks(raw_tokens)
            return (raw + raw_tokens if self.config.use_adapter_skip else raw), None
        flow_cells = rearrange(st_flow(rearrange(raw_cells, "b s (t k) -> b s t k", k=self.layout.cell_size), dim=2),
                               "b s t k -> b s (t k)")  # [B, S, T * K], the flow of every slot
        flow_tokens = self.flow_adapter(flow_cells, timestamps, valid)  # [B, S, D]
        raw, flow = self._frozen_blocks(torch.cat([raw_tokens, flow_tokens], dim=0)).chunk(2, dim=0)  # 2 x [B, S, D]
        if self.config.use_adapter_skip:
            raw, flow = raw + raw_tokens, flow + flow_tokens
        if self.cross_prompt is not None:
            raw, flow = self.cross_prompt(raw, flow, ~self.layout.cell_valid)
        return raw, flow

    def _frozen_blocks(self, tokens: torch.Tensor) -> torch.Tensor:
        """The frozen VFM, in the backbone's precision; fp32 out. Shapes: [B', S, D] -> [B', S, D]

        In bf16 on a CPU the blocks' attention runs as matmul + softmax: the fused CPU kernel's bf16 backward made a
        training step 10-20 % slower (Los-loop, 26 tokens: 743-837 against 923-970 ms, one thread).
        """
        if self.config.precision == "bf16":
            self.vfm.set_fused_attention(tokens.device.type != "cpu")
        with autocast(self.config.precision, tokens.device):
            return self.vfm(tokens).float()

    def forward_head(self, x: torch.Tensor, raw: torch.Tensor, flow: Optional[torch.Tensor] = None,
                     timestamps: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Shapes: x: [B, T, N], raw, flow: [B, S, D], timestamps: [B, T, 2] -> forecast [B, T_out, N],
        flow forecast [B, T_out, N] (None without flow tokens or a flow head)"""
        forecast = self.forecast_head(raw, x, timestamps)
        flow_forecast = None
        if flow is not None and self.flow_head is not None:
            flow_forecast = self.flow_head(flow, st_flow(x), timestamps)
        return forecast, flow_forecast

    def forward(self, inputs: torch.Tensor, inputs_timestamps: Optional[torch.Tensor] = None,
                targets: Optional[torch.Tensor] = None, targets_mask: Optional[torch.Tensor] = None,
                train: bool = False, targets_base: Optional[torch.Tensor] = None
                ) -> Union[torch.Tensor, Dict[str, torch.Tensor]]:
        """Forecast; while training (with targets) also return the weighted auxiliary flow loss.

        `targets_base` is what the protocol adds to the forecast, given when the targets are a residual
        (`--history week-residual`: the targets are `data - copy`, `targets_base` is the copy of one week earlier;
        `weeks-residual`: the median of the copies one to three weeks earlier).
        The flow loss then reads the future flow of the data itself, `targets + targets_base`, which continues the
        input series; the flow of a residual would not (its first step would be a residual minus a reading).

        Returns:
            `prediction [B, T_out, N]`, or `{"prediction", "aux_loss"}` while training with the flow loss on.
        """
        x = inputs[..., 0] if inputs.dim() == 4 else inputs  # [B, T, N]
        timestamps = inputs_timestamps if self.config.use_temporal_context else None
        whole = self.config.precision if self.config.precision_scope == "model" else "fp32"
        with autocast(whole, x.device):
            raw, flow = self.forward_features(x, timestamps)
            # The flow forecast only feeds the training loss: skipped otherwise (validation, test, forecasts).
            prediction, flow_forecast = self.forward_head(x, raw, flow if train and targets is not None else None,
                                                          inputs_timestamps if self.config.head_calendar else None)
        prediction = prediction.float()
        if flow_forecast is None:
            return prediction
        y = targets if targets_base is None else targets + targets_base  # [B, T_out, N(, C)]: the data's own
        y = y[..., 0] if y.dim() == 4 else y
        mask = None if targets_mask is None else (targets_mask[..., 0] if targets_mask.dim() == 4 else targets_mask)
        target_flow, flow_mask = future_flow(x[:, -1:], y, mask)
        aux = self.config.flow_loss_weight * flow_forecasting_loss(flow_forecast.float(), target_flow, flow_mask)
        return {"prediction": prediction, "aux_loss": aux}
