"""Dropout whose mask comes from uniform draws: the same distribution as `nn.Dropout`, cheaper on a CPU.

`nn.Dropout` draws its mask with `bernoulli_`, which on a CPU costs about 3.5x a `rand_like` of the
same size (measured: 26.6 ms against 7.5 ms for 1.8 M values, one thread); at the width of ST-VFM's
node-level heads that was 14 % of a training step. Keeping a value when its uniform draw is at least
`p` keeps it with probability `1 - p`, exactly as Bernoulli(1 - p) does; kept values are scaled by
`1 / (1 - p)`. Only the random stream differs; in eval mode it is the identity, like `nn.Dropout`.
"""
import torch
from torch import nn


class UniformDropout(nn.Module):
    """Shapes: any -> the same."""

    def __init__(self, p: float = 0.1) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout p={p}: give a probability in [0, 1).")
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = torch.rand_like(x) >= self.p  # True with probability 1 - p
        return x * keep * (1.0 / (1.0 - self.p))

    def extra_repr(self) -> str:
        return f"p={self.p}"
