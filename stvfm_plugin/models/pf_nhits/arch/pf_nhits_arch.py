"""pytorch-forecasting's N-HiTS network as a global BasicTS model.

The network is the library's own (`pytorch_forecasting.models.nhits.sub_modules.NHiTS`), built by the
library's `NHiTS` model class so that its defaults (pooling sizes, downsampling, initialisation)
apply; only that network is kept. Each node's window is one series, so one set of weights serves
all N nodes; time of day and day of week are known covariates over the input and forecast steps.
"""
from __future__ import annotations

import warnings
from typing import Optional

import torch
from einops import rearrange, repeat
from torch import nn

from ....errors import UserError
from ..config.pf_nhits_config import PFNHiTSConfig

TARGET = "Target 1"  # pytorch-forecasting's name of the target when no dataset names it
COVARIATES = ["time_of_day", "day_of_week"]


def build_pf_nhits_network(config: PFNHiTSConfig) -> nn.Module:
    """The N-HiTS network, as pytorch-forecasting's `NHiTS` model class builds it."""
    from pytorch_forecasting.metrics import MAE
    from pytorch_forecasting.models import NHiTS

    covariates = COVARIATES if config.use_time_covariates else []
    with warnings.catch_warnings():  # Lightning's advice on hyperparameter saving: irrelevant here
        warnings.filterwarnings("ignore", message="Attribute .* is an instance of `nn.Module`")
        model = NHiTS(
            context_length=config.input_len, prediction_length=config.output_len, output_size=1,
            x_reals=[TARGET] + covariates, time_varying_reals_encoder=[TARGET] + covariates,
            time_varying_reals_decoder=covariates, static_reals=[], static_categoricals=[], x_categoricals=[],
            time_varying_categoricals_encoder=[], time_varying_categoricals_decoder=[], embedding_sizes={},
            hidden_size=config.hidden_size, n_blocks=list(config.n_blocks), n_layers=config.n_layers,
            pooling_sizes=config.pooling_sizes, downsample_frequencies=config.downsample_frequencies,
            naive_level=config.naive_level, dropout=config.dropout, loss=MAE())
    return model.model


class PFNHiTS(nn.Module):
    """N-HiTS (pytorch-forecasting's network) on BasicTS inputs.

    Args:
        config: All settings; see `PFNHiTSConfig`.

    Shapes:
        inputs: [B, T, N] (or [B, T, N, C]: channel 0), inputs_timestamps: [B, T, 2],
        targets_timestamps: [B, T_out, 2] -> prediction [B, T_out, N]
    """

    def __init__(self, config: PFNHiTSConfig) -> None:
        super().__init__()
        self.config = config
        self.network = build_pf_nhits_network(config)
        self.build_report = [f"N-HiTS network: {type(self.network).__module__}.{type(self.network).__name__} "
                             f"(pytorch-forecasting), {len(self.network.blocks)} blocks, global over nodes"]
        self.backbone_report = list(self.build_report)  # the wrapped network

    def forward(self, inputs: torch.Tensor, inputs_timestamps: Optional[torch.Tensor] = None,
                targets_timestamps: Optional[torch.Tensor] = None) -> torch.Tensor:
        values = inputs[..., 0] if inputs.dim() == 4 else inputs  # [B, T, N]
        b, t, n = values.shape
        series = rearrange(values, "b t n -> (b n) t 1")  # [B * N, T, 1]
        mask = torch.ones(b * n, t, dtype=torch.bool, device=values.device)  # [B * N, T]
        if self.config.use_time_covariates:
            if inputs_timestamps is None or targets_timestamps is None:
                raise UserError("N-HiTS with use_time_covariates=True needs inputs_timestamps and targets_timestamps "
                                "(use_timestamps=True in the config), or set model_config.use_time_covariates=False.")
            past = repeat(inputs_timestamps[..., :2], "b t c -> (b n) t c", n=n)  # [B * N, T, 2]
            future = repeat(targets_timestamps[..., :2], "b t c -> (b n) t c", n=n)  # [B * N, T_out, 2]
        else:
            past = future = None
        forecast, *_ = self.network(encoder_y=series, encoder_mask=mask, encoder_x_t=past, decoder_x_t=future,
                                    x_s=torch.zeros(b * n, 0, device=values.device))  # [B * N, T_out, 1]
        return rearrange(forecast[..., 0], "(b n) t -> b t n", b=b)  # [B, T_out, N]
