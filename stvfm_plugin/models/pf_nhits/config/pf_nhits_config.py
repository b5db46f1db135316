"""`PFNHiTSConfig`: settings of pytorch-forecasting's N-HiTS run as a global BasicTS model."""
from dataclasses import dataclass, field
from typing import List, Optional

from basicts.configs import BasicTSModelConfig

from ....errors import UserError


@dataclass
class PFNHiTSConfig(BasicTSModelConfig):
    """Config of the N-HiTS baseline (Challu et al., AAAI 2023), network from pytorch-forecasting.

    Fields named like pytorch-forecasting's `NHiTS` arguments mean the same; None takes its default.
    """

    input_len: int = field(default=12, metadata={"help": "Input steps T (N-HiTS context_length)."})
    output_len: int = field(default=12, metadata={"help": "Forecast steps T_out (prediction_length)."})
    num_features: int = field(default=None, metadata={"help": "Series N; one set of weights serves them all. None: from the dataset."})
    use_time_covariates: bool = field(default=True, metadata={
        "help": "Time of day and day of week as known covariates, past and future."})
    hidden_size: int = field(default=512, metadata={"help": "Width of the MLPs (pytorch-forecasting default 512)."})
    n_blocks: List[int] = field(default_factory=lambda: [1, 1, 1], metadata={"help": "Blocks per stack."})
    n_layers: int = field(default=2, metadata={"help": "MLP layers per block."})
    pooling_sizes: Optional[List[int]] = field(default=None, metadata={
        "help": "Input pooling per stack (None: pytorch-forecasting's default from prediction_length)."})
    downsample_frequencies: Optional[List[int]] = field(default=None, metadata={
        "help": "Forecast interpolation per stack (None: pytorch-forecasting's default)."})
    naive_level: bool = field(default=True, metadata={"help": "Start from the last observed value."})
    dropout: float = field(default=0.0, metadata={"help": "Dropout in the MLPs."})

    def __post_init__(self) -> None:
        if self.num_features is not None and self.num_features < 1:
            raise UserError("PFNHiTSConfig.num_features must be the number of series (>= 1), "
                            "or None to take it from the dataset.")
