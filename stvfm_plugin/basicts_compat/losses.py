"""Training losses that BasicTS 1.1.0 cannot express on its own.

BasicTS's `AddAuxiliaryLoss` callback discards a model's auxiliary term, and BasicTS rebuilds plain
loss functions from their code object (dropping default values). A loss given as an `nn.Module`
is called as is; BasicTS reads the parameter names with `inspect.signature(loss)`, so the module
exposes `forward`'s signature, and the runner passes it every `forward_return` key whose name
matches a parameter: here `aux_loss`, which a model returns only while training.
"""
import inspect
from typing import Optional

import torch
from basicts.metrics import masked_mae as basicts_masked_mae
from torch import nn

from .metrics import honest

#: BasicTS's masked MAE, but NaN (not 0) for a non-finite prediction: a diverged model must not train on a zero loss
masked_mae = honest(basicts_masked_mae)


class MaskedMAEWithAux(nn.Module):
    """Masked MAE of the prediction plus the model's auxiliary loss, when the model returns one."""

    def __init__(self) -> None:
        super().__init__()
        self.__signature__ = inspect.signature(self.forward)

    def forward(self, prediction: torch.Tensor, targets: torch.Tensor,
                targets_mask: Optional[torch.Tensor] = None,
                aux_loss: Optional[torch.Tensor] = None) -> torch.Tensor:
        loss = masked_mae(prediction, targets, targets_mask)
        if aux_loss is not None:
            loss = loss + aux_loss
        return loss


class LikelihoodLoss(nn.Module):
    """The model's own negative log-likelihood while training (a probabilistic model such as DeepAR
    returns it as `nll`); masked MAE of the prediction otherwise (validation loss)."""

    def __init__(self) -> None:
        super().__init__()
        self.__signature__ = inspect.signature(self.forward)

    def forward(self, prediction: torch.Tensor, targets: torch.Tensor,
                targets_mask: Optional[torch.Tensor] = None, nll: Optional[torch.Tensor] = None) -> torch.Tensor:
        return nll if nll is not None else masked_mae(prediction, targets, targets_mask)
