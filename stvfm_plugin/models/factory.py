"""`build_model(cfg, dataset)`: the one way a model of a config is built, given its dataset's structure.

A model's `__init__` takes its config and, where it declares them, the dataset's graph (`adj`), sensor coordinates
(`coords`), grid shape (`grid_shape`) and channels (`channel_names`). The runner, the benchmarks and the diagnostics all build through here.
"""
from __future__ import annotations

import inspect
from typing import Any, Callable, Dict

from torch import nn

from ..data.info import DatasetInfo

#: what a model's `__init__` may take besides its config -> how to get it from the dataset
STRUCTURE: Dict[str, Callable[[DatasetInfo], Any]] = {
    "adj": DatasetInfo.graph, "coords": DatasetInfo.coords, "grid_shape": lambda d: d.grid_shape,
    "channel_names": lambda d: d.channel_names}


def structure_for(model: type, dataset: DatasetInfo) -> Dict[str, Any]:
    """The structural inputs `model.__init__` declares, taken from the dataset."""
    accepted = inspect.signature(model.__init__).parameters
    return {name: get(dataset) for name, get in STRUCTURE.items() if name in accepted}


def build_model(cfg: Any, dataset: DatasetInfo) -> nn.Module:
    """The model of a BasicTS config (`cfg.model` built with `cfg.model_config`) with the dataset's structure, on
    the CPU (the runner moves it to its device)."""
    return cfg.model(cfg.model_config, **structure_for(cfg.model, dataset))
