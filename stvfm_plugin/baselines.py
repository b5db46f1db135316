"""The leaderboard's baselines: one function per model that builds its BasicTS config, for any dataset.

The generic config files `baselines_cfg/<Model>.py` are `baseline_config(...)` of this module, so the
hyperparameters (and where they come from) live in one place; the dataset's facts come from the dataset
the run names (`--dataset`). All models share
the traffic protocol of `protocols.traffic_protocol` (same splits, scaler, null value, metrics);
training settings are each model's own, from its paper or BasicTS's own configs, as cited below.
Gradient clipping at 5 (BasicTS's STGNN configs) and early stopping on validation MAE apply to all.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Optional

from basicts.configs import BasicTSForecastingConfig
from basicts.runners.callback import EarlyStopping, GradientClipping
from torch.optim.lr_scheduler import MultiStepLR

from .errors import UserError
from .basicts_compat.losses import LikelihoodLoss
from .protocols import patches_for, traffic_protocol

#: training length of the generic configs (early stopping on validation MAE usually ends them sooner); the
#: leaderboard sets its own budget
DEFAULT_EPOCHS = 100
DEFAULT_PATIENCE = 10


def _stvfm() -> tuple:
    # ST-VFM sized for a 2-core CPU: DINOv2 ViT-S/14, first 2 blocks, 3 x 3 cells per token (the model's
    # defaults, chosen by validation MAE on Los-loop: benchmarks/README.md); Adam lr 1e-3, weight decay 1e-4,
    # batch 32. Its schedule is in SCHEDULES. The backbone's LayerNorms train (the frozen-pretrained-transformer
    # recipe GPT4TS uses; the model's default keeps them frozen): chosen on validation among the candidates of
    # issue 30 on Los-loop and SZ-taxi (benchmarks/results/tune/choice.md).
    from .models.stvfm import STVFM, STVFMConfig
    return STVFM, STVFMConfig(input_len=12, output_len=12, backbone="dinov2_vits14", vfm_layers=2,
                              train_backbone_norms=True), \
        dict(lr=1e-3, weight_decay=1e-4), 32


def _stid() -> tuple:
    # STID paper (Shao et al., CIKM 2022) / BasicTS's own PEMS configs: 3 layers of width 32, 32-wide node,
    # time-of-day and day-of-week embeddings; Adam lr 0.002, weight decay 1e-4, batch 64.
    from basicts.models.STID import STID, STIDConfig
    return STID, STIDConfig(input_len=12, output_len=12, num_features=None, input_hidden_size=32, num_layers=3,
                            spatial_hidden_size=32, if_time_in_day=None, if_day_in_week=None, num_time_in_day=None,
                            num_day_in_week=7, tid_hidden_size=32, diw_hidden_size=32), \
        dict(lr=0.002, weight_decay=1e-4), 64


def _stemgnn() -> tuple:
    # StemGNN paper (Cao et al., NeurIPS 2020) / BasicTS's StemGNN config: 2 blocks, multi-layer 5,
    # dropout 0.5, leaky rate 0.2; Adam lr 0.002, weight decay 1e-4, batch 64.
    from basicts.models.StemGNN import StemGNN, StemGNNConfig
    return StemGNN, StemGNNConfig(input_len=12, output_len=12, num_features=None, num_blocks=2,
                                  hidden_size=5, dropout=0.5, leaky_rate=0.2), dict(lr=0.002, weight_decay=1e-4), 64


def _itransformer() -> tuple:
    # iTransformer paper (Liu et al., ICLR 2024), PEMS scripts: 4 layers, d_model 512, d_ff 512, 8 heads,
    # Adam lr 1e-3, batch 32; RevIN on (BasicTS default).
    from basicts.models.iTransformer import iTransformerConfig
    from basicts.models.iTransformer import iTransformerForForecasting as iTransformer
    return iTransformer, iTransformerConfig(input_len=12, output_len=12, num_features=None, hidden_size=512,
                                            n_heads=8, intermediate_size=512, num_layers=4, dropout=0.1), \
        dict(lr=1e-3, weight_decay=0.0), 32


def _patchtst() -> tuple:
    # PatchTST paper (Nie et al., ICLR 2023), its larger-dataset setting: 3 layers, d_model 128, 16 heads,
    # d_ff 256, dropout 0.2, Adam lr 1e-4 ... patch 16 / stride 8 are for 336-step inputs: with 12 steps,
    # patch 4 / stride 2 (6 patches); longer inputs (--history week) get `protocols.patches_for` theirs.
    from basicts.models.PatchTST import PatchTSTConfig
    from basicts.models.PatchTST import PatchTSTForForecasting as PatchTST
    patch_len, patch_stride = patches_for(12)
    return PatchTST, PatchTSTConfig(input_len=12, output_len=12, num_features=None, patch_len=patch_len,
                                    patch_stride=patch_stride, hidden_size=128, n_heads=16, intermediate_size=256,
                                    num_layers=3, attn_dropout=0.2, fc_dropout=0.2), \
        dict(lr=1e-4, weight_decay=0.0), 64


def _dlinear() -> tuple:
    # DLinear paper (Zeng et al., AAAI 2023): moving-average kernel 25, shared linear layers; lr 5e-3 (its
    # traffic / electricity scripts), batch 64.
    from basicts.models.DLinear import DLinear, DLinearConfig
    return DLinear, DLinearConfig(input_len=12, output_len=12, num_features=None, moving_avg=25,
                                  individual=False), dict(lr=5e-3, weight_decay=0.0), 64


def _gwnet() -> tuple:
    # Graph WaveNet paper (Wu et al., IJCAI 2019): residual / dilation 32, skip 256, end 512, 4 blocks of 2
    # layers, kernel 2, diffusion order 2, adaptive embeddings of 10, dropout 0.3; Adam lr 1e-3,
    # weight decay 1e-4, batch 64, clip 5.
    from .models.gwnet import GWNet, GWNetConfig
    return GWNet, GWNetConfig(input_len=12, output_len=12, num_features=None), dict(lr=1e-3, weight_decay=1e-4), 64


def _gpt4ts() -> tuple:
    # GPT4TS paper (Zhou et al., NeurIPS 2023): GPT-2, first 6 layers, norms and position embeddings trained,
    # RevIN, patch embedding in, linear out; patch 4 / stride 2 for 12-step inputs (paper: 16 / 8 for 336+; longer
    # inputs get `protocols.patches_for` theirs).
    # The paper has no 12 -> 12 traffic setting: Adam lr 1e-3, batch 64, as ST-LLM on traffic.
    from .models.gpt4ts import GPT4TS, GPT4TSConfig
    patch_len, patch_stride = patches_for(12)
    return GPT4TS, GPT4TSConfig(input_len=12, output_len=12, num_features=None, backbone="gpt2",
                                llm_layers=6, patch_len=patch_len, patch_stride=patch_stride), \
        dict(lr=1e-3, weight_decay=0.0), 64


def _stllm() -> tuple:
    # ST-LLM paper (Liu et al., MDM 2024): GPT-2, 6 layers, partially frozen attention with the last U = 2
    # layers' attention trained, 64-wide value / time-of-day / day-of-week / node embeddings fused to the
    # LM width; lr 1e-3, batch 64.
    from .models.stllm import STLLM, STLLMConfig
    return STLLM, STLLMConfig(input_len=12, output_len=12, num_features=None, backbone="gpt2",
                              llm_layers=6, unfrozen_layers=2, embed_dim=64), dict(lr=1e-3, weight_decay=1e-4), 64


def _nhits() -> tuple:
    # N-HiTS paper (Challu et al., AAAI 2023) with pytorch-forecasting's defaults: 3 stacks of 1 block,
    # 2-layer MLPs of width 512, naive level, library pooling / interpolation; Adam lr 1e-3, batch 64 windows
    # (x N series: the model is global).
    from .models.pf_nhits import PFNHiTS, PFNHiTSConfig
    return PFNHiTS, PFNHiTSConfig(input_len=12, output_len=12, num_features=None), \
        dict(lr=1e-3, weight_decay=0.0), 64


def _deepar() -> tuple:
    # DeepAR paper (Salinas et al., IJF 2020): 3 LSTM layers of 40 cells, Gaussian likelihood, trained by its
    # negative log-likelihood with teacher forcing; pytorch-forecasting's dropout 0.1; Adam lr 1e-3, batch 64
    # windows (x N series: the model is global). Forecast for the metrics: mean of 20 sample paths.
    from .models.pf_deepar import PFDeepAR, PFDeepARConfig
    return PFDeepAR, PFDeepARConfig(input_len=12, output_len=12, num_features=None, hidden_size=40,
                                    rnn_layers=3, num_samples=20), dict(lr=1e-3, weight_decay=0.0), 64


#: the leaderboard's models (its default rows, in this order) -> the builder of each one's config: the one registry
BUILDERS: Dict[str, Callable[[], tuple]] = {
    "STVFM": _stvfm, "STID": _stid, "StemGNN": _stemgnn, "GWNet": _gwnet, "GPT4TS": _gpt4ts, "STLLM": _stllm,
    "iTransformer": _itransformer, "PatchTST": _patchtst, "DLinear": _dlinear, "NHiTS": _nhits, "DeepAR": _deepar,
}
#: per-model training length and schedule other than DEFAULT_EPOCHS / DEFAULT_PATIENCE and a constant rate
SCHEDULES: Dict[str, dict] = {
    "STVFM": dict(num_epochs=40, patience=5, lr_scheduler=MultiStepLR,
                  lr_scheduler_params={"milestones": [10, 20], "gamma": 0.3}),
}
#: training losses other than the protocol's masked MAE (probabilistic models train on their likelihood)
TRAINING_LOSSES: Dict[str, Callable[[], Any]] = {"DeepAR": LikelihoodLoss}


def baseline_config(model: str, dataset: Optional[str] = None, num_epochs: Optional[int] = None,
                    patience: Optional[int] = None, **overrides: Any) -> BasicTSForecastingConfig:
    """The BasicTS config of leaderboard model `model` under the traffic protocol.

    Dataset facts (nodes, calendar features, null value, graph) are left to the dataset the run names
    (`--dataset`, or `dataset` here): `stvfm_plugin.data.binding.bind_dataset` fills them in.
    """
    if model not in BUILDERS:
        raise UserError(f"No model {model!r}; known: {', '.join(BUILDERS)}.")
    arch, model_config, optimizer_params, batch_size = BUILDERS[model]()
    schedule = dict(SCHEDULES.get(model, {}))
    default_epochs, default_patience = schedule.pop("num_epochs", DEFAULT_EPOCHS), schedule.pop("patience", DEFAULT_PATIENCE)
    num_epochs, patience = num_epochs or default_epochs, patience or default_patience
    extra = {"loss": TRAINING_LOSSES[model]()} if model in TRAINING_LOSSES else {}
    settings = dict(
        model=arch, model_config=model_config, **{**traffic_protocol(dataset), **extra, **schedule},
        num_epochs=num_epochs, batch_size=batch_size, optimizer_params=optimizer_params,
        callbacks=[GradientClipping(5.0), EarlyStopping(patience=patience)])
    settings.update(overrides)
    return BasicTSForecastingConfig(**settings)
