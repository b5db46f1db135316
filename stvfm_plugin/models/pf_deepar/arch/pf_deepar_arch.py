"""pytorch-forecasting's DeepAR as a global BasicTS model.

The network is the library's own `pytorch_forecasting.models.DeepAR` (its LSTM encoder-decoder and
Gaussian projection, built by its constructor and called through its `forward`). Each node's window
is one series with time of day and day of week as known covariates. Training is DeepAR's: teacher
forcing with the true previous values and the Gaussian negative log-likelihood of the targets
(returned as `nll`, which `LikelihoodLoss` uses). Outside training the forecast is the **mean of
`num_samples` sample paths** drawn autoregressively, as pytorch-forecasting predicts.

One change to the library's network, not to its math: its recurrent layer runs unpacked when every
sequence fills its window (always so here), see `_WholeWindows`.
"""
from __future__ import annotations

import warnings
from typing import Dict, Optional, Union

import torch
from einops import rearrange, repeat
from pytorch_forecasting.data.encoders import TorchNormalizer
from pytorch_forecasting.metrics import NormalDistributionLoss
from pytorch_forecasting.models import DeepAR
from pytorch_forecasting.models.nn.rnn import GRU, LSTM
from torch import nn
from torch.nn.utils.rnn import PackedSequence

from ....errors import UserError
from ..config.pf_deepar_config import PFDeepARConfig

TARGET = "target"
COVARIATES = ["time_of_day", "day_of_week"]


class _WholeWindows:
    """pytorch-forecasting's recurrent layer, run unpacked when every sequence fills the window.

    The library packs the batch whenever it is given lengths, even when they all equal the window. On CPU the
    packed recurrence slices the input step by step, and the backward of each slice writes a zero tensor the
    size of the whole input: 11.5 s of a 64 x 207-series training step of the paper's 3 x 40 LSTM on one thread,
    3.9 s unpacked (`benchmarks/README.md`). With every length equal to the window, packing changes nothing
    in the result: the same recurrence over the same steps, the same last hidden state.
    """

    def forward(self, x, hx=None, lengths: Optional[torch.Tensor] = None, enforce_sorted: bool = True):
        steps = x.shape[1 if self.batch_first else 0] if not isinstance(x, PackedSequence) else None
        if lengths is not None and steps is not None and bool((lengths == steps).all()):
            lengths = None
        return super().forward(x, hx=hx, lengths=lengths, enforce_sorted=enforce_sorted)


class WholeWindowLSTM(_WholeWindows, LSTM):
    """pytorch-forecasting's LSTM, unpacked on whole windows (see `_WholeWindows`)."""


class WholeWindowGRU(_WholeWindows, GRU):
    """pytorch-forecasting's GRU, unpacked on whole windows (see `_WholeWindows`)."""


def _whole_window_rnn(rnn: nn.RNNBase) -> nn.RNNBase:
    """`rnn` (the library's LSTM or GRU) as its `_WholeWindows` subclass, with the same weights."""
    kind = {LSTM: WholeWindowLSTM, GRU: WholeWindowGRU}[type(rnn)]
    with torch.random.fork_rng():  # the new layer's own random init must not shift the run's random stream
        whole = kind(input_size=rnn.input_size, hidden_size=rnn.hidden_size, num_layers=rnn.num_layers,
                     dropout=rnn.dropout, batch_first=rnn.batch_first)
    whole.load_state_dict(rnn.state_dict())
    return whole


def build_pf_deepar(config: PFDeepARConfig) -> nn.Module:
    """pytorch-forecasting's DeepAR for one real target and two known real covariates, in normalised units."""
    with warnings.catch_warnings():  # Lightning's advice on hyperparameter saving: irrelevant here
        warnings.filterwarnings("ignore", message="Attribute .* is an instance of `nn.Module`")
        network = DeepAR(
            cell_type=config.cell_type, hidden_size=config.hidden_size, rnn_layers=config.rnn_layers,
            dropout=config.dropout, target=TARGET, x_reals=[TARGET] + COVARIATES,
            time_varying_reals_encoder=[TARGET] + COVARIATES, time_varying_reals_decoder=COVARIATES,
            static_reals=[], static_categoricals=[], x_categoricals=[], time_varying_categoricals_encoder=[],
            time_varying_categoricals_decoder=[], embedding_sizes={}, loss=NormalDistributionLoss(),
            output_transformer=TorchNormalizer(method="identity", center=False))  # BasicTS already scaled
    network.rnn = _whole_window_rnn(network.rnn)
    return network


class PFDeepAR(nn.Module):
    """DeepAR (pytorch-forecasting's network) on BasicTS inputs.

    Args:
        config: All settings; see `PFDeepARConfig`.

    Shapes:
        inputs: [B, T, N] (or [B, T, N, C]: channel 0), inputs_timestamps: [B, T, 2],
        targets, targets_mask: [B, T_out, N], targets_timestamps: [B, T_out, 2]
        -> prediction [B, T_out, N] (training: also `nll`, a scalar)
    """

    def __init__(self, config: PFDeepARConfig) -> None:
        super().__init__()
        self.config = config
        self.network = build_pf_deepar(config)
        self.build_report = [f"DeepAR network: {type(self.network).__module__}.{type(self.network).__name__} "
                             f"(pytorch-forecasting), {config.cell_type} {config.rnn_layers} x {config.hidden_size}; "
                             f"forecast = mean of {config.num_samples} sample paths"]
        self.backbone_report = list(self.build_report)  # the wrapped network

    def forward(self, inputs: torch.Tensor, inputs_timestamps: torch.Tensor, targets_timestamps: torch.Tensor,
                targets: Optional[torch.Tensor] = None, targets_mask: Optional[torch.Tensor] = None
                ) -> Union[torch.Tensor, Dict[str, torch.Tensor]]:
        if inputs_timestamps is None or targets_timestamps is None:
            raise UserError("DeepAR needs inputs_timestamps and targets_timestamps (use_timestamps=True in the config).")
        values = inputs[..., 0] if inputs.dim() == 4 else inputs  # [B, T, N]
        b, t, n = values.shape
        t_out = targets_timestamps.shape[1]
        future = targets if self.training and targets is not None else values.new_zeros(b, t_out, n)  # [B, T_out, N]
        encoder = torch.cat([rearrange(values, "b t n -> (b n) t 1"),
                             repeat(inputs_timestamps[..., :2], "b t c -> (b n) t c", n=n)], dim=-1)  # [B*N, T, 3]
        decoder = torch.cat([rearrange(future, "b t n -> (b n) t 1"),
                             repeat(targets_timestamps[..., :2], "b t c -> (b n) t c", n=n)], dim=-1)  # [B*N, T_out, 3]
        rows = b * n
        x = dict(encoder_cont=encoder, decoder_cont=decoder,
                 encoder_cat=encoder.new_zeros(rows, t, 0, dtype=torch.long),
                 decoder_cat=encoder.new_zeros(rows, t_out, 0, dtype=torch.long),
                 encoder_lengths=torch.full((rows,), t, device=encoder.device),
                 decoder_lengths=torch.full((rows,), t_out, device=encoder.device),
                 target_scale=encoder.new_tensor([0.0, 1.0]).expand(rows, 2))
        if not self.training:
            samples = self.network(x, n_samples=self.config.num_samples).prediction  # [B*N, T_out, S]
            return rearrange(samples.mean(-1), "(b n) t -> b t n", b=b)  # [B, T_out, N]
        parameters = self.network(x).prediction  # [B*N, T_out, 4]: target scale, loc, scale
        nll = self.network.loss.loss(parameters, decoder[..., 0])  # [B*N, T_out]
        mask = rearrange(targets_mask, "b t n -> (b n) t") if targets_mask is not None else torch.ones_like(nll)
        prediction = rearrange(self.network.loss.to_prediction(parameters), "(b n) t -> b t n", b=b)  # [B, T_out, N]
        return {"prediction": prediction, "nll": (nll * mask).sum() / mask.sum().clamp_min(1.0)}
