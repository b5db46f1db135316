"""Loading BasicTS 1.1.0 config files and applying `--set key=value` overrides."""
from __future__ import annotations

import ast
import dataclasses
import difflib
import importlib.util
import inspect
import re
import sys
import traceback
from pathlib import Path
from typing import Any, Iterable, List, Tuple

from basicts.configs import BasicTSConfig
from easydict import EasyDict

from .errors import UserError

#: dict-valued config entries whose keys are the parameters of another entry's class
_PARAM_DICTS = {"optimizer_params": "optimizer", "lr_scheduler_params": "lr_scheduler",
                "dataset_params": "dataset_type"}


def load_config(path: str | Path) -> BasicTSConfig:
    """Execute a config file and return its `CFG` (a `BasicTSConfig`, e.g. `BasicTSForecastingConfig`)."""
    path = Path(path)
    if not path.is_file():
        hint = " (it is a folder)" if path.is_dir() else ""
        raise UserError(f"Config file '{path}' does not exist{hint}. Pass the path of a Python config file, "
                        "e.g. -c baselines_cfg/STVFM_Demo.py.")
    if path.suffix != ".py":
        raise UserError(f"Config file '{path}' is not a Python file. A config is a .py file that defines "
                        "CFG = BasicTSForecastingConfig(...).")
    module_name = f"stvfm_cfg_{path.stem}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.resolve().parent))
    try:
        spec.loader.exec_module(module)
    except UserError:
        raise
    except Exception as e:
        frames = [f for f in traceback.extract_tb(e.__traceback__) if Path(f.filename).resolve() == path.resolve()]
        where = f" (line {frames[-1].lineno})" if frames else ""
        raise UserError(f"Config file '{path}' failed to load{where}: {type(e).__name__}: {e}") from e
    finally:
        sys.path.remove(str(path.resolve().parent))
    cfg = getattr(module, "CFG", None)
    if cfg is None:
        raise UserError(f"Config file '{path}' defines no CFG. A BasicTS 1.1 config must end with "
                        "CFG = BasicTSForecastingConfig(model=..., model_config=..., dataset_name=..., ...).")
    if not isinstance(cfg, BasicTSConfig):
        if isinstance(cfg, (dict, EasyDict)):
            raise UserError(f"Config file '{path}' looks like a BasicTS 0.x (v0.5-style EasyDict) config: CFG is a "
                            f"{type(cfg).__name__}. BasicTS 1.1 needs CFG = BasicTSForecastingConfig(model=..., "
                            "model_config=..., dataset_name=..., ...); see baselines_cfg/STID_PEMS08.py for the "
                            "1.1 form of the same settings.")
        raise UserError(f"Config file '{path}': CFG is a {type(cfg).__name__}, not a BasicTSForecastingConfig.")
    return cfg


def parse_value(text: str) -> Any:
    """A `--set` value: Python literal (1e-3, [1, 2], None, True, 'a') or, failing that, a plain string."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


#: task entries that must be whole numbers of at least 1, and numbers above 0
_POSITIVE_INTS = ("num_epochs", "batch_size", "input_len", "output_len", "train_batch_size", "val_batch_size",
                  "test_batch_size")
_POSITIVE_NUMBERS = ("lr",)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def checked_value(key: str, current: Any, value: Any) -> Any:
    """`value` for `key`, checked against what the entry holds now: a number stays a number (an int where
    a float is expected becomes that float), counts such as `num_epochs` are whole and positive, and
    `null_val` is any number (or none: no missing-value marker, every reading scored)."""
    name = key.rpartition(".")[2]
    if name in _POSITIVE_INTS and not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
        raise UserError(f"--set {key}={value!r}: give a whole number of at least 1.")
    if name in _POSITIVE_NUMBERS and not (_is_number(value) and value > 0):
        raise UserError(f"--set {key}={value!r}: give a number above 0.")
    if name == "null_val":
        if value is None:
            return None  # every reading is data (`bind_dataset` hands BasicTS its NaN)
        if not _is_number(value):
            raise UserError(f"--set {key}={value!r}: give a number (the value that marks a missing reading) or none.")
        return float(value)
    if _is_number(current) and value is not None and not _is_number(value):
        raise UserError(f"--set {key}={value!r}: give a number (the config has {current!r}).")

    if isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _check_field_type(key: str, model_config: Any, name: str, value: Any) -> None:
    """A model-config field declared `int` or `bool` (optionally `Optional`) takes only such a value (or None when
    optional): `patch_size=1.5` or `pretrained=maybe` are refused instead of stored as they are."""
    if not dataclasses.is_dataclass(model_config):
        return
    declared = next((str(f.type) for f in dataclasses.fields(model_config) if f.name == name), "")
    optional = "Optional" in declared or "None" in declared
    kinds = {k for k in ("bool", "int", "float", "str") if re.search(rf"\b{k}\b", declared)}
    if value is None:
        if not optional and kinds:
            raise UserError(f"--set {key}=None: this field needs a value.")
        return
    if kinds == {"bool"} and not isinstance(value, bool):
        raise UserError(f"--set {key}={value!r}: give True or False.")
    if kinds == {"int"} and not (isinstance(value, int) and not isinstance(value, bool)):
        raise UserError(f"--set {key}={value!r}: give a whole number.")


def _close(key: str, options: Iterable[str]) -> str:
    options = sorted(set(options))
    matches = difflib.get_close_matches(key, options, n=5, cutoff=0.5)
    if not matches:
        matches = [o for o in options if key.lower() in o.lower()][:5]
    return f" Close matches: {', '.join(matches)}." if matches else ""


def _public_keys(cfg: BasicTSConfig) -> list[str]:
    return [k for k in cfg.keys() if not k.startswith("_")]


def _params_of(cls: Any) -> list[str]:
    if cls is None:
        return []
    return [k for k in inspect.signature(cls.__init__).parameters if k not in ("self", "args", "kwargs", "optimizer")]


def _model_fields(model_config: Any) -> list[str]:
    if dataclasses.is_dataclass(model_config):
        return [f.name for f in dataclasses.fields(model_config)]
    return list(model_config.keys())


def parse_override(item: str) -> Tuple[str, Any]:
    """`KEY=VALUE` (a `--set` argument) -> (key, typed value)."""
    if "=" not in item:
        raise UserError(f"--set expects KEY=VALUE, got {item!r} (e.g. --set num_epochs=2).")
    key, text = item.split("=", 1)
    return key.strip(), parse_value(text)


def apply_overrides(cfg: BasicTSConfig, overrides: Iterable[Tuple[str, Any]]) -> List[str]:
    """Apply `(key, value)` overrides to a loaded config, as if they had been passed to its constructor.

    Top-level keys that BasicTS copies into the model, dataset, optimizer and scheduler parameters
    (`input_len`, `lr`, `batch_size`, ...) are copied there too. Dotted keys reach one level down:
    `model_config.vfm_layers=6`, `optimizer_params.weight_decay=0`, `lr_scheduler_params.milestones=[1,5]`.

    Returns:
        One line per applied override, for the log.
    """
    applied = []
    default_dir = default_ckpt_dir(cfg)
    for key, value in overrides:
        head, _, rest = key.partition(".")
        if head not in cfg or head.startswith("_"):
            raise UserError(f"--set {key}: the config has no entry '{head}'.{_close(head, _public_keys(cfg))}")
        if not rest:
            value = checked_value(key, cfg[head], value)
            set_top_level(cfg, head, value)
        elif head == "model_config":
            fields = _model_fields(cfg.model_config)
            if rest not in fields:
                raise UserError(f"--set {key}: {type(cfg.model_config).__name__} has no field '{rest}'."
                                f"{_close(rest, fields)}")
            value = checked_value(key, getattr(cfg.model_config, rest), value)
            _check_field_type(key, cfg.model_config, rest, value)
            setattr(cfg.model_config, rest, value)  # an EasyDict: sets the item too
        elif head in _PARAM_DICTS:
            allowed = set(_params_of(cfg.get(_PARAM_DICTS[head]))) | set(cfg[head] or {})
            if rest not in allowed:
                raise UserError(f"--set {key}: '{rest}' is not a parameter of "
                                f"{getattr(cfg.get(_PARAM_DICTS[head]), '__name__', head)}.{_close(rest, allowed)}")
            value = checked_value(key, (cfg[head] or {}).get(rest), value)
            cfg[head] = dict(cfg[head] or {}, **{rest: value})
        elif isinstance(cfg[head], dict):
            if rest not in cfg[head]:
                raise UserError(f"--set {key}: '{head}' has no key '{rest}'.{_close(rest, cfg[head])}")
            cfg[head][rest] = value = checked_value(key, cfg[head][rest], value)
        else:
            raise UserError(f"--set {key}: '{head}' is a {type(cfg[head]).__name__}, it has no fields to set.")
        applied.append(f"{key} = {value!r}")
    if dataclasses.is_dataclass(cfg.model_config) and hasattr(cfg.model_config, "__post_init__"):
        cfg.model_config.__post_init__()  # the model config's own checks, on the values it now holds
    refresh(cfg, default_dir)
    return applied


def refresh(cfg: BasicTSConfig, default_dir: str) -> None:
    """After changes: a config still on its default checkpoint folder follows them, and its md5 is recomputed."""
    if cfg.ckpt_save_dir == default_dir:
        cfg.ckpt_save_dir = default_ckpt_dir(cfg)
    cfg._md5, cfg._serialized = "", {}


def set_top_level(cfg: BasicTSConfig, key: str, value: Any) -> None:
    """Set a top-level entry and, as BasicTS does at construction, the parameters it is a shortcut for."""
    setattr(cfg, key, value)
    if key == "batch_size" and value is not None:
        cfg.train_batch_size = cfg.val_batch_size = cfg.test_batch_size = value
    if key == "gpus":
        cfg.gpu_num = len(value.split(",")) if value else 0
    if value is None:
        return
    # BasicTS copies such top-level "shortcut" keys into the parameters of these objects
    if key in _model_fields(cfg.model_config):
        setattr(cfg.model_config, key, value)
    for params, cls_key in _PARAM_DICTS.items():
        if key in _params_of(cfg.get(cls_key)) and cfg.get(params) is not None:
            cfg[params] = dict(cfg[params], **{key: value})


def default_ckpt_dir(cfg: BasicTSConfig) -> str:
    """BasicTS's default `ckpt_save_dir`, from the model, dataset, epochs and lengths."""
    return f"checkpoints/{cfg.model.__name__}/{cfg.dataset_name}_{cfg.num_epochs}_{cfg.input_len}_{cfg.output_len}"
