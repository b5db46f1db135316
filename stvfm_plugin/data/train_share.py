"""Training on the most recent share of the training split (`--train-fraction`): the few-shot setting.

A new deployment has a few weeks of data, not years. `--train-fraction F` keeps the last `F` of the training split's
steps, the part next to validation, and drops the rest before anything is learned: the scaler is fitted on the kept
steps (BasicTS fits it on the training dataset's data), and the windows are those that fit inside them. Validation
and test are unchanged, so the scores compare with a full run's.

An epoch still takes as many training windows as an epoch of all of the data (the kept ones, each about `1 / F` times
an epoch, shuffled), so that everything a config counts in epochs keeps its meaning in optimizer steps: the epoch
limit, early stopping's patience, the learning-rate milestones and how often validation runs. With one pass over the
kept windows an epoch, a run at 10 % took a tenth of the steps: ST-VFM's learning rate fell to 9 % of its start after
100 steps (its milestones are epochs 10 and 20), and its first 10 % run on SZ-taxi was still improving when the
epoch limit ended it (validation MAE 3.1708 at epoch 92 of 100; 2026-12-08, before this rule).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Union

from basicts.data.tsf_dataset import BasicTSForecastingDataset
from basicts.utils.constants import BasicTSMode

from ..errors import UserError
from .info import DatasetInfo


def kept_steps(train_steps: int, fraction: float) -> int:
    """Steps of a training split of `train_steps` kept at `fraction` (rounded up: a fraction never rounds to nothing)."""
    return min(train_steps, max(1, math.ceil(train_steps * fraction - 1e-9)))


class RecentShareDataset(BasicTSForecastingDataset):
    """BasicTS's forecasting dataset whose training split keeps only its last `train_fraction` of steps, and whose
    epoch draws as many windows as one of the whole split (`windows` kept ones, each about `1 / F` times).

    Shapes:
        data [L, N, C] of the split -> [ceil(F * L), N, C] for the training split, unchanged for the others
    """

    def __init__(self, dataset_name: str, input_len: int, output_len: int, mode: Union[BasicTSMode, str],
                 use_timestamps: bool = False, local: bool = True, data_file_path: Optional[str] = None,
                 memmap: bool = False, train_fraction: float = 1.0) -> None:
        super().__init__(dataset_name, input_len, output_len, mode, use_timestamps, local, data_file_path, memmap)
        self.train_fraction = train_fraction
        self.epoch_windows = super().__len__()  # an epoch of the whole split
        if mode == BasicTSMode.TRAIN and train_fraction < 1.0:
            start = len(self._data) - kept_steps(len(self._data), train_fraction)
            self._data = self._data[start:]  # [kept, N, C]: the steps next to validation
            if use_timestamps:
                self.timestamps = self.timestamps[start:]  # [kept, 2]
        self.epoch_windows = max(self.epoch_windows, self.windows)

    @property
    def windows(self) -> int:
        """The distinct windows of the kept steps."""
        return super().__len__()

    def __len__(self) -> int:
        return self.epoch_windows if self.windows > 0 else 0

    def __getitem__(self, index: int) -> dict:
        return super().__getitem__(index % self.windows)  # the kept windows, over and over


@dataclass(frozen=True)
class TrainShare:
    """What a fraction keeps of one dataset's training split, for a run of `input_len` in and `output_len` out."""

    fraction: float
    train_steps: int
    steps: int
    windows: int
    all_windows: int

    def describe(self) -> str:
        epoch = max(self.all_windows, self.windows)  # what `RecentShareDataset` draws an epoch
        return (f"Training on the most recent {100 * self.fraction:g} % of the training split (--train-fraction "
                f"{self.fraction:g}): {self.steps:,} of {self.train_steps:,} steps, {self.windows:,} of "
                f"{self.all_windows:,} windows; the scaler is fitted on them, validation and test are unchanged; an "
                f"epoch draws {epoch:,} of them (each about {epoch / max(self.windows, 1):.1f} times), as many steps "
                "as an epoch of all of the data")


def train_share(info: DatasetInfo, fraction: float, input_len: int, output_len: int, batch_size: int) -> TrainShare:
    """Check `fraction` against the dataset and the run's windows; one line naming what is wrong."""
    if not 0.0 < fraction <= 1.0:
        raise UserError(f"--train-fraction {fraction:g}: give a share of the training split above 0 and at most 1 "
                        "(e.g. 0.1 for the most recent 10 %).")
    total = info.split_lengths["train"]
    steps = kept_steps(total, fraction)
    span = input_len + output_len
    share = TrainShare(fraction, total, steps, max(0, steps - span + 1), max(0, total - span + 1))
    day = info.steps_per_day
    if day is not None and steps < day:
        raise UserError(f"--train-fraction {fraction:g} keeps {steps} steps of {info.name}'s training split, less than "
                        f"one day ({day} steps of {info.step_minutes} minutes): a model could not see the day's "
                        f"rhythm. Give at least {math.ceil(100 * day / total) / 100:g}.")
    if share.windows < batch_size:
        need = math.ceil(100 * (span - 1 + batch_size) / total) / 100
        raise UserError(f"--train-fraction {fraction:g} keeps {steps} steps of {info.name}'s training split: "
                        f"{share.windows} windows of {input_len} + {output_len} steps, fewer than one batch "
                        f"({batch_size}). Give at least {need:g}" + (", or a smaller batch_size." if need <= 1 else
                                                                      ", or a smaller batch_size or input_len."))
    return share
