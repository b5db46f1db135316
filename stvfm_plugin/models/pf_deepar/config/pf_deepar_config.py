"""`PFDeepARConfig`: settings of pytorch-forecasting's DeepAR run as a global BasicTS model."""
from dataclasses import dataclass, field

from basicts.configs import BasicTSModelConfig

from ....errors import UserError


@dataclass
class PFDeepARConfig(BasicTSModelConfig):
    """Config of the DeepAR baseline (Salinas et al., 2020), network from pytorch-forecasting."""

    input_len: int = field(default=12, metadata={"help": "Input steps T (the encoder length)."})
    output_len: int = field(default=12, metadata={"help": "Forecast steps T_out (the decoder length)."})
    num_features: int = field(default=None, metadata={"help": "Series N; one set of weights serves them all. None: from the dataset."})
    cell_type: str = field(default="LSTM", metadata={"help": "Recurrent cell: LSTM or GRU."})
    hidden_size: int = field(default=40, metadata={"help": "Recurrent width (paper: 40)."})
    rnn_layers: int = field(default=3, metadata={"help": "Recurrent layers (paper: 3)."})
    dropout: float = field(default=0.1, metadata={"help": "Dropout between recurrent layers."})
    num_samples: int = field(default=20, metadata={
        "help": "Sample paths drawn autoregressively outside training; the forecast is their mean."})

    def __post_init__(self) -> None:
        if self.num_features is not None and self.num_features < 1:
            raise UserError("PFDeepARConfig.num_features must be the number of series (>= 1), "
                            "or None to take it from the dataset.")
        if self.num_samples < 1:
            raise UserError(f"PFDeepARConfig.num_samples={self.num_samples}: draw at least 1 sample path.")
