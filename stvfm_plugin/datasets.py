"""A config meets its dataset: find (or generate) the prepared set, then fill in the facts the config leaves open.

Configs never hand-type dataset facts. They leave `num_features`, `steps_per_day` / `num_time_in_day`, the
calendar switches and `null_val` as None, and `bind_dataset` takes them from the dataset's `DatasetInfo`.
Synthetic sets are named by what they are (`Synth64n14d5m`: 64 nodes, 14 days, 5-minute steps) and
generated on first use, so two different synthetic sets never share a folder.
"""
from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Callable, Dict, List, Optional

from .data.info import DATASETS_ROOT, DatasetInfo, dataset_folder
from .data.layout import DATA_FILES, META_FILE, TIMESTAMP_FILES, read_meta
from .data.presets import PRESETS
from .data.synth import SynthOptions
from .errors import UserError

#: the demo set of the `*_Demo.py` configs and the tests: 64 road sensors, 14 days of 5-minute steps
DEMO = SynthOptions(num_nodes=64, num_steps=288 * 14, step_minutes=5, seed=0)
_SYNTH_NAME = re.compile(r"^Synth(\d+)n(\d+)d(\d+)m(?:-s(\d+))?$")


def synthetic_name(options: SynthOptions) -> str:
    """The dataset name of a synthetic set, e.g. `Synth64n14d5m` (seed 0) or `Synth64n14d5m-s3`."""
    steps_per_day = 24 * 60 // options.step_minutes
    if (24 * 60) % options.step_minutes or options.num_steps % steps_per_day:
        raise UserError(f"A named synthetic set needs whole days of steps that divide a day; got {options.num_steps} "
                        f"steps of {options.step_minutes} minutes.")
    seed = f"-s{options.seed}" if options.seed else ""
    return f"Synth{options.num_nodes}n{options.num_steps // steps_per_day}d{options.step_minutes}m{seed}"


def synthetic_options(name: str) -> Optional[SynthOptions]:
    """The generator options a synthetic set's name stands for (None for other names)."""
    match = _SYNTH_NAME.match(name or "")
    if not match:
        return None
    nodes, days, minutes, seed = match.groups()
    minutes = int(minutes)
    if minutes < 1 or (24 * 60) % minutes:
        return None
    return SynthOptions(num_nodes=int(nodes), num_steps=int(days) * (24 * 60 // minutes), step_minutes=minutes,
                        seed=int(seed or 0))


DEMO_NAME = synthetic_name(DEMO)


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
        from .data.commands import synth_dataset

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
    from .config_tools import set_top_level

    lines = [f"Dataset {info.describe()}"]
    if cfg.get("null_val") is None:
        set_top_level(cfg, "null_val", info.protocol_null_val)
        lines.append("null_val from the dataset: " + ("none, every reading is scored" if info.null_val is None
                                                      else f"{info.null_val:g}, those readings are masked"))
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
