"""Building a run's model inside BasicTS 1.1.0's runner.

`BasicTSRunner.__init__` builds the model with `Builder._build_model(cfg, logger)`, which calls
`cfg.model(cfg.model_config)` and nothing else, and wraps the model in DDP with `device_ids` even for a CPU module
(DDP refuses that). Two parts, each the narrowest that works:

- `BoundModel`: stands in for `cfg.model` while the runner is built: a callable named and shaped like the model
  class, whose call is `build_model(cfg, dataset)` (the dataset's graph, coordinates and grid shape passed in).
- `PluginBuilder`: `Builder` with a `_build_model` that wraps a CPU module in DDP without `device_ids`. BasicTS's
  runner module looks its builder up by name, so `install()` binds the subclass there (once, on import of this
  package); for a config without a `BoundModel` it builds exactly as BasicTS does, apart from that DDP fix.
"""
from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

import torch
from basicts.runners import basicts_runner
from basicts.runners.builder import Builder
from easytorch.device import to_device
from easytorch.utils import get_local_rank
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

from ..data.info import DatasetInfo
from ..models.factory import build_model


class BoundModel:
    """A model class with its dataset bound: what `cfg.model` holds while BasicTS builds the runner.

    BasicTS reads `cfg.model.__name__` (checkpoint names), `cfg.model.forward` (the parameters its forward pass
    hands over) and calls `cfg.model(cfg.model_config)`.
    """

    def __init__(self, model_class: type, dataset: DatasetInfo) -> None:
        self.model_class, self.dataset = model_class, dataset
        self.__name__ = model_class.__name__
        self.forward = model_class.forward

    def __call__(self, model_config: Any) -> nn.Module:
        return build_model(SimpleNamespace(model=self.model_class, model_config=model_config), self.dataset)


class PluginBuilder(Builder):
    """BasicTS's builder, with DDP that accepts CPU modules (gloo)."""

    @staticmethod
    def _build_model(cfg: Any, logger: logging.Logger) -> nn.Module:
        logger.info("Building model.")
        model = to_device(cfg.model(cfg.model_config))
        if cfg.compile_model:
            logger.info("Compile model with torch.compile")
            model = torch.compile(model)
        if torch.distributed.is_initialized():
            on_gpu = next(model.parameters()).is_cuda
            model = DDP(model, device_ids=[get_local_rank()] if on_gpu else None,
                        find_unused_parameters=cfg.ddp_find_unused_parameters)
        return model


def install() -> None:
    """Make BasicTS's runner build through `PluginBuilder` (idempotent)."""
    basicts_runner.Builder = PluginBuilder
