"""`GWNetConfig`: Graph WaveNet's settings (defaults: the paper's METR-LA / PEMS-BAY settings)."""
from dataclasses import dataclass, field
from typing import Optional

from basicts.configs import BasicTSModelConfig

from ....errors import UserError


@dataclass
class GWNetConfig(BasicTSModelConfig):
    """Config of Graph WaveNet (Wu et al., IJCAI 2019); BasicTS builds `GWNet(config)`."""

    input_len: int = field(default=12, metadata={"help": "Input steps T."})
    output_len: int = field(default=12, metadata={"help": "Forecast steps T_out."})
    num_features: int = field(default=None, metadata={"help": "Graph nodes N; None: from the dataset."})
    use_graph: bool = field(default=True, metadata={
        "help": "Diffuse over the forward / backward transition matrices of the road graph (the dataset's, which the "
                "runner passes as `adj`)."})
    use_adaptive_adj: bool = field(default=True, metadata={
        "help": "Learn the self-adaptive adjacency softmax(ReLU(E1 E2))."})
    adaptive_embed_dim: int = field(default=10, metadata={"help": "Width of the node embeddings E1, E2."})
    use_time_of_day: Optional[bool] = field(default=None, metadata={
        "help": "Feed the time-of-day stamp as a second input channel (as in the paper's code); None: from the "
                "dataset (off for steps of a day or more), on when built by hand."})
    residual_channels: int = field(default=32, metadata={"help": "Channels of the residual stream."})
    dilation_channels: int = field(default=32, metadata={"help": "Channels of the gated temporal convolution."})
    skip_channels: int = field(default=256, metadata={"help": "Channels of the skip connections."})
    end_channels: int = field(default=512, metadata={"help": "Channels of the output layer."})
    kernel_size: int = field(default=2, metadata={"help": "Temporal kernel size."})
    num_blocks: int = field(default=4, metadata={"help": "Blocks of layers; dilations restart at 1 in each block."})
    layers_per_block: int = field(default=2, metadata={"help": "Layers per block (dilations 1, 2, 4, ...)."})
    diffusion_order: int = field(default=2, metadata={"help": "Diffusion steps K of the graph convolution."})
    dropout: float = field(default=0.3, metadata={"help": "Dropout after each graph convolution."})

    def __post_init__(self) -> None:
        if self.num_features is not None and self.num_features < 1:
            raise UserError("GWNetConfig.num_features must be the number of graph nodes (>= 1), "
                            "or None to take it from the dataset.")
        if not (self.use_graph or self.use_adaptive_adj):
            raise UserError("GWNetConfig: use_graph=False and use_adaptive_adj=False leave no adjacency to "
                            "diffuse over; enable at least one.")
