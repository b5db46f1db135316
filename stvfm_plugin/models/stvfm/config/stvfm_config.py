"""`STVFMConfig`: every ST-VFM setting, including one switch per ablation."""
from dataclasses import dataclass, field
from typing import Optional

from basicts.configs import BasicTSModelConfig

from ....errors import UserError
from ...precision import check_precision
from ..arch.frozen_vfm import resolve_backbone
from ..arch.spatial_layout import LAYOUTS


@dataclass
class STVFMConfig(BasicTSModelConfig):
    """Config of the ST-VFM model (BasicTS builds `STVFM(config)`)."""

    input_len: int = field(default=12, metadata={"help": "Input steps T."})
    output_len: int = field(default=12, metadata={"help": "Forecast steps T_out."})
    num_features: Optional[int] = field(default=None, metadata={
        "help": "Spatial points N (graph nodes or grid cells); None: from the dataset."})

    backbone: str = field(default="dinov2_vits14", metadata={
        "help": "Frozen VFM: an alias (dinov2_vits14, dino_vits16, dino_vitb16, clip_vitb16, deit_tiny, deit_small) "
                "or any timm ViT name."})
    backbone_weights: Optional[str] = field(default=None, metadata={
        "help": "Local weights file (safetensors or torch state dict, timm naming). None: $STVFM_BACKBONE_WEIGHTS, "
                "then the timm hub."})
    pretrained: bool = field(default=True, metadata={"help": "False: random backbone weights (named in the log)."})
    allow_random_fallback: bool = field(default=False, metadata={
        "help": "Use random backbone weights, with a warning, when no pretrained weights can be found (demo only)."})
    allow_other_backbone: bool = field(default=False, metadata={
        "help": "Load a checkpoint trained with other backbone weights (or a random backbone) instead of refusing; "
                "the log warns."})
    vfm_layers: Optional[int] = field(default=6, metadata={
        "help": "Use the first k blocks of the VFM (None: all; 0: no backbone, the frozen part is the identity)."})
    compile_backbone: bool = field(default=False, metadata={
        "help": "Run the frozen blocks through torch.compile: on a 2-core CPU ~12 % faster per training step but "
                "about a minute of compilation per new batch shape, so off by default (see benchmarks/README.md)."})
    precision: str = field(default="fp32", metadata={
        "help": "Compute type of precision_scope: fp32, bf16 (CPUs with bf16 instructions and GPUs) or fp16 (GPUs "
                "only, with loss scaling); weights, optimizer and outputs stay fp32 (benchmarks/README 'Precision')."})
    precision_scope: str = field(default="model", metadata={
        "help": "What runs in `precision`: model (the whole forward pass) or backbone (the frozen blocks only; on a "
                "2-core CPU no faster than fp32: the casts cost what the blocks gain)."})
    vpt_prompts: int = field(default=0, metadata={
        "help": "Deep visual prompt tuning: learnable prompt tokens entering every frozen block (0 = off); the "
                "pretrained weights stay frozen."})
    lora_rank: int = field(default=0, metadata={
        "help": "Rank of low-rank adapters on the frozen attention's qkv projection (0 = off); they start at zero and "
                "are kept in the checkpoint, the frozen weights are not."})
    train_backbone_norms: bool = field(default=False, metadata={
        "help": "Train the backbone's LayerNorms, everything else frozen (the frozen-pretrained-transformer recipe "
                "GPT4TS uses)."})
    use_vfm_pos_embed: bool = field(default=True, metadata={
        "help": "Add the VFM's own position embedding, resampled to the token grid."})

    layout: str = field(default="auto", metadata={
        "help": "Nodes onto the token grid: coords | spectral | identity, or auto (coords if the dataset has them, "
                "else spectral if it has a graph, else identity)."})
    patch_size: int = field(default=3, metadata={
        "help": "Token side p in cells: each token holds a p x p block of the node grid (graph layouts) or a p x p "
                "patch of a grid dataset (meta.json grid_shape), i.e. up to p*p nodes. 1: one node per token. "
                "3 was chosen by validation MAE at convergence on Los-loop (benchmarks/README.md)."})
    max_tokens: Optional[int] = field(default=256, metadata={
        "help": "Upper bound on tokens per branch: p is raised from patch_size until the token grid fits "
                "(the log says so). None: no bound."})

    use_flow_branch: bool = field(default=True, metadata={"help": "Use the ST-flow branch (temporal differences)."})
    use_cross_prompt: bool = field(default=True, metadata={
        "help": "Bilateral Cross-Prompt Coordination between the branches (needs the flow branch)."})
    flow_loss_weight: float = field(default=0.5, metadata={
        "help": "Weight of the auxiliary flow-forecasting loss while training (0 = off)."})
    use_temporal_context: bool = field(default=True, metadata={
        "help": "Add calendar (time-of-day / day-of-week) embeddings to the tokens (the ablation switch)."})
    use_time_of_day: Optional[bool] = field(default=None, metadata={
        "help": "With temporal context: the time of day. None: from the dataset (off for steps of a day or more)."})
    use_day_of_week: Optional[bool] = field(default=None, metadata={
        "help": "With temporal context: the day of week. None: from the dataset (off when training does not cover "
                "every weekday, or for steps of more than a day)."})
    steps_per_day: Optional[int] = field(default=None, metadata={
        "help": "Time-of-day slots (288 for 5-minute data); None: from the dataset."})
    use_learned_pos_embed: bool = field(default=True, metadata={"help": "Learnable positional embedding per cell."})
    match_token_stats: bool = field(default=True, metadata={
        "help": "Scale adapter tokens to the spread of the VFM's own patch embeddings."})
    center_tokens: bool = field(default=False, metadata={
        "help": "Subtract each window's mean token (over the occupied cells) before the token norm, so that the frozen "
                "blocks see tokens that differ the way image patches do (the diagnostics found one window's adapter "
                "tokens far more alike: cosine 0.6-0.7 against 0.14-0.2 between image patches)."})
    use_adapter_skip: bool = field(default=True, metadata={
        "help": "Heads read the VFM output plus the adapter tokens (the VFM adds context to a direct path)."})

    adapter_hidden: int = field(default=512, metadata={"help": "Hidden width of the adapters' window MLP."})
    head_hidden: int = field(default=256, metadata={"help": "Hidden width of the heads' MLP (0 = linear heads)."})
    head_calendar: bool = field(default=False, metadata={
        "help": "Add time-of-day / day-of-week embeddings of the last input step to each node's hidden sum in the "
                "heads: with the node embedding and the node's own window, an STID-like identity path that the "
                "VFM's token context adds to (needs head_hidden > 0; follows use_time_of_day / use_day_of_week)."})
    head_layers: int = field(default=2, metadata={
        "help": "Residual MLP layers of the heads' node-level part (after token + own window + node embedding)."})
    num_prompts: int = field(default=4, metadata={"help": "Prompt tokens K per direction of the cross-prompt."})
    prompt_heads: int = field(default=4, metadata={"help": "Attention heads of the cross-prompt (divide prompt_dim)."})
    prompt_dim: int = field(default=64, metadata={"help": "Width in which the cross-prompt attentions are computed."})
    gate_init: float = field(default=0.1, metadata={"help": "Initial value of the cross-prompt residual gates."})
    dropout: float = field(default=0.3, metadata={"help": "Dropout in adapters and heads."})

    def __post_init__(self) -> None:
        resolve_backbone(self.backbone)
        check_precision(self.precision, self.precision_scope)
        if self.layout not in LAYOUTS:
            raise UserError(f"layout={self.layout!r}: choose one of {', '.join(LAYOUTS)}.")
        if self.num_features is not None and self.num_features < 1:
            raise UserError("STVFMConfig.num_features must be the number of nodes (>= 1), or None to take it from the "
                            "dataset.")
        if self.patch_size < 1:
            raise UserError(f"patch_size={self.patch_size}: give 1 or more cells per token side.")
        if self.max_tokens is not None and self.max_tokens < 1:
            raise UserError(f"max_tokens={self.max_tokens}: give 1 or more, or None for no bound.")
        for name in ("vpt_prompts", "lora_rank"):
            if getattr(self, name) < 0:
                raise UserError(f"{name}={getattr(self, name)}: give 0 (off) or a positive number.")
        if self.head_calendar and not self.head_hidden:
            raise UserError("head_calendar=True needs head_hidden > 0 (the calendar embeddings join the heads' hidden "
                            "sum).")
        if self.use_cross_prompt and not self.use_flow_branch:
            raise UserError("use_cross_prompt=True needs use_flow_branch=True (the prompts come from the flow branch).")
