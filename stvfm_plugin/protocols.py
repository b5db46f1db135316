"""The evaluation protocol every config of this project shares.

The traffic protocol of BasicTS's PEMS benchmarks: 12 steps in, 12 out; readings equal to the
dataset's null value (0 for traffic sets, none for e.g. counts) are missing and masked in loss and
metrics; one global z-score fitted on the training split
(`norm_each_channel=False`); metrics in data units (`rescale=True`): masked MAE, RMSE and MAPE
overall and at horizons 3, 6 and 12; best checkpoint by validation MAE.
"""
from __future__ import annotations

from typing import Any, List, Optional

import torch

from .errors import UserError
from .basicts_compat.losses import MaskedMAEWithAux
from .basicts_compat.scaler import ZScoreScalerFixed

#: the protocol's evaluation horizons (steps ahead); a shorter forecast is scored at those it reaches
HORIZONS = (3, 6, 12)


#: how much history every model reads (`--history`): `recent` = the config's input_len (12 steps under the traffic
#: protocol); `week` = one week of steps, so that every model sees the same hour of last week (hourly data's strongest
#: signal: a copy of last week beats every 12-step model on TaxiNYC); `week-residual` = a week in, and every model
#: forecasts the residual of that copy: its output is added to the readings of the same hours one week earlier
#: (`week_copy`), so a model that learns nothing forecasts the copy itself; `weeks-residual` = the same, but the model's
#: output is added to the median of the same hours in each of the last `BASE_WEEKS` weeks (a copy that one unusual week
#: does not move); its windows span those weeks, of which the model reads the last one (`MODEL_INPUT_LEN`)
HISTORIES = ("recent", "week", "week-residual", "weeks-residual")
RESIDUAL_HISTORIES = ("week-residual", "weeks-residual")
MINUTES_PER_WEEK = 7 * 24 * 60
#: the weeks whose same hours `weeks-residual` takes the median of
BASE_WEEKS = 3


def history_input_len(history: str, step_minutes: int) -> Optional[int]:
    """The length of the windows `history` asks for at this step (None: the config's own): what the data loader cuts,
    which the model reads all of except under `weeks-residual` (`model_input_len`)."""
    if history == "recent":
        return None
    if history not in HISTORIES:
        raise UserError(f"--history {history!r}: choose one of {', '.join(HISTORIES)}.")
    if step_minutes > 24 * 60 or MINUTES_PER_WEEK % step_minutes:
        raise UserError(f"--history {history}: a week is not a whole number of {step_minutes}-minute steps of at most a "
                        "day; use --history recent (and --set input_len=N).")
    week = MINUTES_PER_WEEK // step_minutes
    return BASE_WEEKS * week if history == "weeks-residual" else week


def residual_weeks(history: str) -> Optional[int]:
    """The weeks whose copies a residual history takes the median of (`weeks-residual`: `BASE_WEEKS`), else None."""
    return BASE_WEEKS if history == "weeks-residual" else None


def model_input_len(history: str, step_minutes: int) -> Optional[int]:
    """The steps of each window the model reads, where that is fewer than the window (`weeks-residual`: the last
    week of it), else None."""
    weeks = residual_weeks(history)
    return None if weeks is None else history_input_len(history, step_minutes) // weeks


#: the config entry of a run whose model reads only the last steps of each window (`weeks-residual`): how many
MODEL_INPUT_LEN = "model_input_len"
#: the config entry of a `weeks-residual` run: the weeks whose same hours its model's output is added to the median of
RESIDUAL_WEEKS = "residual_weeks"


def apply_history(cfg, history: str, step_minutes: int) -> List[str]:
    """Give the config the windows `history` asks for (the run, and the leaderboard's stale-settings check, alike):
    `input_len` (the model's too), and under `weeks-residual` the model's own, shorter input length.

    Returns:
        One line per change, for the log.
    """
    from .config_tools import apply_overrides

    window = history_input_len(history, step_minutes)
    if window is None:
        return []
    lines = apply_overrides(cfg, [("input_len", window)])
    reads = model_input_len(history, step_minutes)
    if reads is not None:
        cfg[MODEL_INPUT_LEN] = reads
        if hasattr(cfg.model_config, "input_len"):
            cfg.model_config.input_len = reads
        cfg._md5, cfg._serialized = "", {}
        lines.append(f"windows of {window} steps, of which the model reads the last {reads} (model_config.input_len = "
                     f"{reads})")
    return lines


#: the config entry of a `week-residual` run: the steps back of the copy its model's output is added to
RESIDUAL_LAG = "residual_lag"


def residual_lag(history: str, step_minutes: int, output_len: int) -> Optional[int]:
    """The steps back of the copy every model's output is added to (`week-residual`, `weeks-residual`: a week), else
    None."""
    if history not in RESIDUAL_HISTORIES:
        return None
    history_input_len(history, step_minutes)  # refuses a step that does not divide a week
    lag = MINUTES_PER_WEEK // step_minutes
    if output_len > lag:
        raise UserError(f"--history {history}: a {output_len}-step forecast reaches beyond the week it copies "
                        f"({lag} steps); forecast at most {lag} steps, or use --history week.")
    return lag


def week_copy(inputs: torch.Tensor, lag: int, like: torch.Tensor) -> torch.Tensor:
    """The input readings `lag` steps before each forecast step, shaped like the forecast `like` (in the scaler's
    units: a missing reading is the scaler's mean there). A `week-residual` model forecasts `targets - copy`; its
    forecast is `output + copy`.

    Shapes:
        inputs [B, T, N(, C)] with T >= lag >= T_out, like [B, T_out, N(, C')] -> [B, T_out, N(, C')]
    """
    t, t_out = inputs.shape[1], like.shape[1]
    copy = inputs[:, t - lag:t - lag + t_out]  # [B, T_out, N(, C)]: the same steps one lag earlier
    return forecast_channels(copy, like).to(device=like.device, dtype=like.dtype)


def forecast_channels(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """The channels of `x` that the forecast `like` holds: its first `C'`, or the first alone of a forecast without a
    channel axis. Shapes: x [B, T, N(, C)] -> [B, T, N(, C')]"""
    if x.dim() == 4:
        return x[..., :like.shape[-1]] if like.dim() == 4 else x[..., 0]
    return x


#: the config entry of a `week-residual` run whose model adds a level taken from its input window back to its output
#: (`own_level`): "mean" or "last"
RESIDUAL_LEVEL = "residual_level"
LEVELS = ("mean", "last")


def own_level(model_config: Any) -> Optional[str]:
    """The level a model takes from each series' input window and adds back to its output, by its config: RevIN's
    window mean (`use_revin`; its last reading with `subtract_last`), N-HiTS's last reading (`naive_level`); else None."""
    if getattr(model_config, "use_revin", False):
        return "last" if getattr(model_config, "subtract_last", False) else "mean"
    return "last" if getattr(model_config, "naive_level", False) else None


def residual_base(inputs: torch.Tensor, lag: int, like: torch.Tensor, level: Optional[str] = None, weeks: int = 1,
                  model_len: Optional[int] = None, observed: Optional[torch.Tensor] = None) -> torch.Tensor:
    """What a residual model's output is added to: the copy of one week earlier (`week_copy`; with `weeks` > 1 the
    median of the copies 1 .. `weeks` lags earlier), less the level the model adds back itself (`own_level`: each
    series' window mean or last reading, over the `model_len` last steps the model reads). A RevIN model outputs
    `g * std + mean` from a window it sees only normalised, so it could not cancel the mean to forecast a residual, and
    N-HiTS starts its forecast from the last reading, which its pooled inputs do not show exactly; with the level taken
    off the copy, such a forecast is `copy + g * std` (`copy + blocks`): the model forecasts the residual, and one that
    learns nothing still forecasts the copy.

    With `observed` (False where an input reading is missing), a missing reading is no copy, as in the naive references
    `SeasonalWeek` / `SeasonalMedian`: the median is taken of the copies that were read (of two, their mean), and a step
    with none falls back to the series' last reading of the window (`copy_base`).

    Shapes:
        inputs, observed [B, T, N(, C)] with T >= weeks * lag >= T_out, like [B, T_out, N(, C')] -> [B, T_out, N(, C')]
    """
    copies = torch.stack([week_copy(inputs, k * lag, like) for k in range(1, weeks + 1)])  # [weeks, B, T_out, N(, C')]
    seen = None if observed is None else torch.stack(
        [week_copy(observed, k * lag, like) for k in range(1, weeks + 1)]).bool()  # [weeks, B, T_out, N(, C')]
    if seen is not None and not bool(seen.all()):
        series = forecast_channels(inputs, like).to(device=like.device, dtype=like.dtype)  # [B, T, N(, C')]
        read = forecast_channels(observed, like).to(like.device).bool()  # [B, T, N(, C')]
        copy = copy_base(copies, seen, last_readings(series, read, like))
    else:
        copy = copies.median(dim=0).values if weeks > 1 else copies[0]  # [B, T_out, N(, C')]
    if level is None:
        return copy
    if level not in LEVELS:
        raise UserError(f"residual level {level!r}: choose one of {', '.join(LEVELS)}.")
    tail = inputs[:, -(model_len or inputs.shape[1]):]  # [B, T_model, N(, C)]: what the model reads
    window = tail.mean(dim=1, keepdim=True) if level == "mean" else tail[:, -1:]  # [B, 1, N(, C)]
    return copy - week_copy(window.expand_as(inputs), lag, like)  # the level, repeated over the forecast steps


def last_readings(window: torch.Tensor, observed: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Each series' last reading of the window that is not missing (the window's last value where all are missing),
    repeated over the forecast steps of `like`.

    Shapes:
        window, observed [B, T, N(, C')] -> [B, T_out, N(, C')]
    """
    steps = torch.arange(window.shape[1], device=window.device).view(1, -1, *[1] * (window.dim() - 2))  # [1, T, 1..]
    last = torch.where(observed, steps, -1).amax(dim=1, keepdim=True)  # [B, 1, N(, C')]: -1 where none read
    values = window.gather(1, last.clamp(min=0))  # [B, 1, N(, C')]
    values = torch.where(last >= 0, values, window[:, -1:])
    return values.expand(-1, like.shape[1], *values.shape[2:])


def copy_base(copies: torch.Tensor, seen: torch.Tensor, fallback: torch.Tensor) -> torch.Tensor:
    """The median of the copies that were read (the mean of the middle two of an even count), `fallback` where none
    was.

    Shapes:
        copies, seen [K, B, T_out, ...], fallback [B, T_out, ...] -> [B, T_out, ...]
    """
    count = seen.sum(dim=0, keepdim=True)  # [1, B, T_out, ...]
    ordered = torch.where(seen, copies, torch.inf).sort(dim=0).values  # [K, ...]: the copies read first, in order
    low = ordered.gather(0, ((count - 1) // 2).clamp(min=0))  # [1, ...]
    high = ordered.gather(0, (count // 2).clamp(max=copies.shape[0] - 1))
    return torch.where(count[0] > 0, (low[0] + high[0]) / 2, fallback)


#: a config's `null_val` that `bind_dataset` replaces by the dataset's (None would mean: every reading is data)
FROM_DATASET = "from the dataset"


def traffic_protocol(dataset_name: Optional[str] = None, input_len: int = 12, output_len: int = 12,
                     **overrides: Any) -> dict:
    """Keyword arguments of `BasicTSForecastingConfig` for the traffic protocol on `dataset_name` (None: the run's
    `--dataset`). `null_val` is left to the dataset (`FROM_DATASET`; `bind_dataset` fills it in)."""
    protocol = dict(
        dataset_name=dataset_name,
        input_len=input_len,
        output_len=output_len,
        use_timestamps=True,
        memmap=False,
        null_val=FROM_DATASET,
        scaler=ZScoreScalerFixed,
        norm_each_channel=False,
        rescale=True,
        metrics=["MAE", "RMSE", "MAPE"],
        target_metric="MAE",
        eval_horizons=list(HORIZONS),
        loss=MaskedMAEWithAux(),
    )
    protocol.update(overrides)
    return protocol


def fit_horizons(cfg) -> Optional[str]:
    """Make the config's evaluation horizons fit its output length, before anything is trained.

    The protocol's horizons (3 / 6 / 12) follow the output length: those it reaches, or the last step when it reaches
    none (a 1-step forecast is scored at step 1). Horizons chosen otherwise must lie within the output length.

    Returns:
        A log line when the horizons were changed, else None.
    """
    horizons, output_len = cfg.get("eval_horizons"), cfg.get("output_len")
    if not horizons or output_len is None:
        return None
    if not all(isinstance(h, int) and not isinstance(h, bool) and h >= 1 for h in horizons):
        raise UserError(f"eval_horizons={list(horizons)}: give steps ahead as whole numbers of at least 1.")
    if list(horizons) == list(HORIZONS):
        fitted: List[int] = [h for h in HORIZONS if h <= output_len] or [output_len]
        if fitted != list(horizons):
            cfg.eval_horizons = fitted
            return (f"eval_horizons = {fitted}: the protocol's {'/'.join(map(str, HORIZONS))} that a {output_len}-step "
                    "forecast reaches (--set eval_horizons=[...] to choose others)")
        return None
    beyond = [h for h in horizons if h > output_len]
    if beyond:
        raise UserError(f"eval_horizons={list(horizons)} asks for step{'s' if len(beyond) > 1 else ''} "
                        f"{', '.join(map(str, beyond))}, beyond output_len={output_len}. Choose horizons of at most "
                        f"{output_len} (--set eval_horizons=[...]).")
    return None


#: the patching of the longest inputs (PatchTST's paper: patch 16, stride 8, for 336 steps and more)
LONGEST_PATCHES = (16, 8)


def patches_for(input_len: int) -> tuple:
    """`(patch_len, patch_stride)` of the patch models (PatchTST, GPT4TS) for `input_len` steps in: a patch of two
    strides, the stride about a 21st of the input, between 2 (patch 4 / stride 2: 12 steps in, the traffic protocol)
    and 8 (the paper's 16 / 8, from 168 steps in). With the end padding both models add, that is 6 patches for 12
    steps, 21 for a week of hours and 42 for 336 steps, the paper's count."""
    stride = min(LONGEST_PATCHES[1], max(2, input_len // 21))
    return 2 * stride, stride


def fit_patches(cfg, built_input_len: Optional[int], user_keys) -> Optional[str]:
    """Make a patch model's patches follow the run's input length, before anything is trained.

    A config whose patching is `patches_for` its own input length (the baseline configs) gets `patches_for` the run's
    input length when that changed (`--history week`: 168 hours in); patch 4 / stride 2 on a week would make 83
    patches, whose attention over 256 series did not fit in 24 GB at batch 64. Patching the user set (`--set
    model_config.patch_len=...` or `patch_stride`), or a config's own other choice, is kept.

    Returns:
        A log line when the patching was changed, else None.
    """
    model_config = cfg.get("model_config")
    input_len = cfg.get(MODEL_INPUT_LEN) or cfg.get("input_len")
    if model_config is None or input_len is None or built_input_len is None or input_len == built_input_len:
        return None
    keys = ("patch_len", "patch_stride")
    if not all(hasattr(model_config, k) for k in keys) or any(f"model_config.{k}" in user_keys for k in keys):
        return None
    if (model_config.patch_len, model_config.patch_stride) != patches_for(built_input_len):
        return None
    patch_len, stride = patches_for(input_len)
    if (patch_len, stride) == (model_config.patch_len, model_config.patch_stride):
        return None
    model_config.patch_len, model_config.patch_stride = patch_len, stride
    return (f"model_config.patch_len = {patch_len}, model_config.patch_stride = {stride}: the patches follow the "
            f"{input_len} steps in ({(input_len - patch_len) // stride + 2} patches with the end padding; "
            "--set model_config.patch_len=... / patch_stride=... to choose others)")
