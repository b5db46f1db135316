"""A config meets its dataset: find (or generate) the prepared set, then fill in the facts the config leaves open.

Configs never hand-type dataset facts. They leave `num_features`, `steps_per_day` / `num_time_in_day` and the
calendar switches as None and `null_val` as `protocols.FROM_DATASET` (None means "every reading is data"), and
`bind_dataset` takes them from the dataset's `DatasetInfo`.
A synthetic set named by what it is (`Synth64n14d5m`, see `data.synth`) is generated on first use.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, Dict, List, Optional

import numpy as np

from ..basicts_compat.null_value import basicts_null_val
from ..errors import UserError
from ..protocols import FROM_DATASET
from .info import DATASETS_ROOT, DatasetInfo, dataset_folder
from .layout import DATA_FILES, META_FILE, TIMESTAMP_FILES, check_scale, read_meta
from .presets import PRESETS
from .synth import DEMO_NAME, synth_dataset, synthetic_options


def config_folder(cfg) -> Path:
    """Where BasicTS will read the config's dataset: `data_file_path`, else the dataset's folder."""
    params = cfg.get("dataset_params") or {}
    path = params.get("data_file_path") or cfg.get("data_file_path")
    return Path(path) if path else dataset_folder(cfg.dataset_name)


def prepare_hint(name: str) -> str:
    """The exact command that prepares dataset `name`."""
    for key, preset in PRESETS.items():
        if key.lower() == name.lower():
            return (f"python -m stvfm_plugin.data prepare --preset {key} --src <folder with the raw files> "
                    f"({preset.note})")
    return (f"python -m stvfm_plugin.data prepare --name {name} --data <signal file> --step-minutes <minutes> "
            f"[--graph <adjacency>] (or name a synthetic set, e.g. --dataset {DEMO_NAME}, generated on first use)")


def _required_files(cfg) -> List[str]:
    files = [META_FILE, *DATA_FILES]
    if (cfg.get("dataset_params") or {}).get("use_timestamps", cfg.get("use_timestamps")):
        files += TIMESTAMP_FILES
    return files


def ensure_dataset(cfg, logger: logging.Logger) -> DatasetInfo:
    """The config's dataset, generated first when its name is a synthetic set's that is not there yet."""
    if not cfg.get("dataset_name"):
        raise UserError("The config names no dataset: pass --dataset NAME (a folder under "
                        f"{DATASETS_ROOT}, prepared with "
                        "python -m stvfm_plugin.data prepare ...).")
    folder = config_folder(cfg)
    synth = synthetic_options(cfg.dataset_name)
    if synth is not None and (folder / META_FILE).is_file():
        made = (read_meta(folder).get("source") or {}).get("synthetic")
        if made != vars(synth):
            differ = ", ".join(f"{k} {(made or {}).get(k)} there, {v} here" for k, v in vars(synth).items()
                               if (made or {}).get(k) != v)
            raise UserError(f"Dataset folder {folder} holds another set than the synthetic set its name "
                            f"{cfg.dataset_name} stands for ({differ}). Remove or rename that folder.")
    missing = [f for f in _required_files(cfg) if not (folder / f).is_file()]
    if missing and synth is not None:
        logger.info(f"Dataset {cfg.dataset_name} not found in {folder}: generating that synthetic set ({vars(synth)}).")
        synth_dataset(folder.parent, folder.name, synth, overwrite=folder.exists(),
                      min_window=cfg.input_len + cfg.output_len)
        missing = [f for f in _required_files(cfg) if not (folder / f).is_file()]
    if missing:
        where = f"in {folder.resolve()}" if folder.is_dir() else f"at {folder.resolve()} (the folder does not exist)"
        raise UserError(f"Dataset '{cfg.dataset_name}' is not prepared: expected {', '.join(missing)} {where}. "
                        f"BasicTS reads datasets relative to the working directory. Prepare it with: "
                        f"{prepare_hint(cfg.dataset_name)}.")
    return DatasetInfo.load(folder)


# ---- dataset facts into a config ------------------------------------------------------------------
#: model-config fields that hold a count fact -> the fact
_COUNTS: Dict[str, Callable[[DatasetInfo], Optional[int]]] = {
    "num_features": lambda d: d.num_nodes,
    "steps_per_day": lambda d: d.steps_per_day,
    "num_time_in_day": lambda d: d.steps_per_day,
}
#: model-config switches of a calendar feature -> the `DatasetInfo` property that says whether it makes sense
_CALENDAR = {"if_time_in_day": "time_of_day", "use_time_of_day": "time_of_day",
             "if_day_in_week": "day_of_week", "use_day_of_week": "day_of_week"}


def bind_dataset(cfg, info: DatasetInfo) -> List[str]:
    """Fill what the config leaves to the dataset (None entries), and switch off calendar features that make no
    sense for it; a hand-set count that contradicts the dataset is a `UserError`.

    Returns:
        One line per fact taken or switch changed, for the log.
    """
    from ..config_tools import set_top_level

    lines = [f"Dataset {info.describe()}"]
    null_val = cfg.get("null_val")
    if isinstance(null_val, str) and null_val == FROM_DATASET:
        null_val = info.null_val
        lines.append("null_val from the dataset: " + ("none, every reading is scored" if null_val is None
                                                      else f"{null_val:g}, those readings are masked"))
    set_top_level(cfg, "null_val", basicts_null_val(null_val))
    model_config = cfg.model_config
    off = info.calendar_off()
    for name, fact in _COUNTS.items():
        if name not in model_config:
            continue
        value, wanted = model_config[name], fact(info)
        if value is None:
            setattr(model_config, name, wanted)  # model configs are EasyDicts: the item follows
        elif wanted is not None and value != wanted:
            raise UserError(f"model_config.{name}={value}, but dataset {info.name} has {wanted}. Leave {name} out of "
                            "the config: it comes from the dataset.")
    calendar = [name for name in _CALENDAR if name in model_config]
    for name in calendar:
        fact = _CALENDAR[name]
        value, usable = model_config[name], getattr(info, fact)
        if value is None or (value and not usable):
            setattr(model_config, name, usable)
            if not usable:
                lines.append(f"model_config.{name} = False: {off[fact]}")
    if calendar:
        lines.append(f"calendar features of {info.name}: {info.calendar_summary()}; the model's switches: "
                     + ", ".join(f"{name}={model_config[name]}" for name in calendar))
        lines += [f"calendar: {note}" for note in info.calendar_notes() if note not in off.values()]
    cfg._md5, cfg._serialized = "", {}
    return lines


def check_values(info: DatasetInfo) -> None:
    """Refuse, before anything is written, a dataset whose readings would overflow the metrics or whose split holds no
    scored reading (`prepare` refuses both; this catches a set written by other means)."""
    for name in DATA_FILES:
        data = np.load(info.folder / name, mmap_mode="r")
        check_scale(info.name, data, "and prepare it again")
        if info.null_val is not None and np.isclose(data, info.null_val, atol=5e-5).all():
            raise UserError(f"Dataset {info.name}: every reading of its {name.split('_')[0]} split equals the null value "
                            f"{info.null_val:g}, so nothing there could be scored. Prepare it again (python -m "
                            "stvfm_plugin.data prepare ... --overwrite, with --null-value none if those values are real "
                            "readings).")


def check_windows(cfg, info: DatasetInfo) -> None:
    """Refuse, before anything is written, a run whose windows do not fit the dataset: every split must hold at least
    one window of `input_len + output_len` steps."""
    needed = (cfg.get("input_len") or 0) + (cfg.get("output_len") or 0)
    short = {split: n for split, n in info.split_lengths.items() if n < needed}
    if short:
        raise UserError(f"input_len + output_len = {needed} steps, longer than dataset {info.name}'s "
                        + ", ".join(f"{split} split ({n} steps)" for split, n in short.items())
                        + ": no window fits there. Shorten input_len / output_len, or prepare the dataset with other "
                          "ratios.")
