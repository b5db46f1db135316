"""Z-score scaler that also works with `norm_each_channel=False` (the PEMS protocol).

BasicTS 1.1.0's `ZScoreScaler.fit` builds `torch.Tensor(np.float32)` for a global mean, which raises
`TypeError: new(): data must be a sequence`. This subclass computes the same statistics (mean and
standard deviation over all training values, nulls included, as BasicTS does) and stores them as
0-d tensors.
"""
from typing import Union

import numpy as np
import torch
from basicts.scaler import ZScoreScaler


class ZScoreScalerFixed(ZScoreScaler):
    """`basicts.scaler.ZScoreScaler` with a working global (`norm_each_channel=False`) mode."""

    def fit(self, data: Union[np.ndarray, torch.Tensor]) -> None:
        if self.stats or self.norm_each_channel:
            super().fit(data)
            return
        values = data.detach().cpu().numpy() if isinstance(data, torch.Tensor) else np.asarray(data)
        mean = float(np.mean(values, dtype=np.float64))
        std = float(np.std(values, dtype=np.float64)) or 1.0
        self.stats["mean"] = torch.tensor(mean, dtype=torch.float32)
        self.stats["std"] = torch.tensor(std, dtype=torch.float32)
