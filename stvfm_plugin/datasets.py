"""Checks that the dataset a config names is prepared, and synthesises demo datasets on first use."""
from __future__ import annotations

import logging
from pathlib import Path

from .data.layout import DATA_FILES, META_FILE, TIMESTAMP_FILES, read_meta
from .data.presets import PRESETS
from .errors import UserError


def dataset_folder(cfg) -> Path:
    """Where BasicTS will read the config's dataset: `data_file_path`, else `datasets/<dataset_name>`."""
    params = cfg.get("dataset_params") or {}
    return Path(params.get("data_file_path") or cfg.get("data_file_path") or f"datasets/{cfg.dataset_name}")


def prepare_hint(name: str) -> str:
    """The exact command that prepares dataset `name`."""
    for key, preset in PRESETS.items():
        if key.lower() == name.lower():
            return (f"python -m stvfm_plugin.data prepare --preset {key} --src <folder with the raw files> "
                    f"({preset.note})")
    return (f"python -m stvfm_plugin.data prepare --name {name} --data <signal file> --step-minutes <minutes> "
            "[--graph <adjacency>] (or `python -m stvfm_plugin.data synth --name "
            f"{name}` for synthetic data)")


def required_files(cfg) -> list[str]:
    files = [META_FILE, *DATA_FILES]
    if (cfg.get("dataset_params") or {}).get("use_timestamps", cfg.get("use_timestamps")):
        files += TIMESTAMP_FILES
    return files


def ensure_dataset(cfg, logger: logging.Logger) -> Path:
    """Return the dataset folder, after generating it when the config asks for synthetic data.

    A config that sets `synthetic_dataset=dict(...)` (options of `SynthOptions`, plus `ratios`) gets
    its dataset generated on first use; every other config must find it prepared.
    """
    folder = dataset_folder(cfg)
    missing = [f for f in required_files(cfg) if not (folder / f).is_file()]
    synth = cfg.get("synthetic_dataset")
    if synth:
        from .data.commands import synth_dataset
        from .data.synth import SynthOptions

        options = dict(synth)
        ratios = tuple(options.pop("ratios", (0.6, 0.2, 0.2)))
        requested = vars(SynthOptions(**options))
        made = (read_meta(folder).get("source") or {}).get("synthetic") if (folder / META_FILE).is_file() else None
        if made is not None and made != requested:
            differ = ", ".join(f"{k} {made.get(k)} there, {v} here" for k, v in requested.items() if made.get(k) != v)
            raise UserError(f"Dataset folder {folder} holds another synthetic set than this config asks for ({differ}). "
                            "Remove or rename that folder, or give this config another dataset_name.")
    if missing and synth:
        logger.info(f"Dataset {cfg.dataset_name} not found in {folder}: generating the synthetic demo set "
                    f"({options}) on first use.")
        synth_dataset(folder.parent, folder.name, SynthOptions(**options), ratios=ratios, overwrite=folder.exists(),
                      min_window=cfg.input_len + cfg.output_len)
        missing = [f for f in required_files(cfg) if not (folder / f).is_file()]
    if missing:
        where = f"in {folder.resolve()}" if folder.is_dir() else f"at {folder.resolve()} (the folder does not exist)"
        raise UserError(f"Dataset '{cfg.dataset_name}' is not prepared: expected {', '.join(missing)} {where}. "
                        f"BasicTS reads datasets relative to the working directory. Prepare it with: "
                        f"{prepare_hint(cfg.dataset_name)}.")
    return folder
