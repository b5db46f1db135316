"""Dataset facts a model config may leave as None: the runner fills them from the dataset (`bind_dataset`);
a model built by hand resolves them here, with a clear error where a fact is needed and missing."""
from __future__ import annotations

from typing import Any, Tuple

from ..errors import UserError


def require_nodes(config: Any, model: str) -> int:
    """`config.num_features`, which must be set by now."""
    if config.num_features is None:
        raise UserError(f"{model}: num_features (the number of nodes) is not set. `python -m basicts.run ... --dataset "
                        "NAME` takes it from the dataset; when building the model yourself, set it in the config.")
    return int(config.num_features)


def calendar_switches(config: Any, model: str) -> Tuple[bool, bool]:
    """(time of day, day of week) for a config with `steps_per_day`, `use_time_of_day`, `use_day_of_week`:
    None means on where possible (time of day needs `steps_per_day`)."""
    time_of_day = config.steps_per_day is not None if config.use_time_of_day is None else bool(config.use_time_of_day)
    if time_of_day and not config.steps_per_day:
        raise UserError(f"{model}: use_time_of_day=True needs steps_per_day (time-of-day slots, e.g. 288 for 5-minute "
                        "data); for steps of a day or more, set use_time_of_day=False.")
    day_of_week = True if config.use_day_of_week is None else bool(config.use_day_of_week)
    return time_of_day, day_of_week
