"""The evaluation protocol every config of this project shares.

The traffic protocol of BasicTS's PEMS benchmarks: 12 steps in, 12 out; readings equal to the
dataset's null value (0 for traffic sets, none for e.g. counts) are missing and masked in loss and
metrics; one global z-score fitted on the training split
(`norm_each_channel=False`); metrics in data units (`rescale=True`): masked MAE, RMSE and MAPE
overall and at horizons 3, 6 and 12; best checkpoint by validation MAE.
"""
from __future__ import annotations

from typing import Any, Optional

from .losses import MaskedMAEWithAux
from .scaler import ZScoreScalerFixed


def traffic_protocol(dataset_name: Optional[str] = None, input_len: int = 12, output_len: int = 12,
                     **overrides: Any) -> dict:
    """Keyword arguments of `BasicTSForecastingConfig` for the traffic protocol on `dataset_name` (None: the run's
    `--dataset`). `null_val` is left to the dataset (None here; `bind_dataset` fills it in)."""
    protocol = dict(
        dataset_name=dataset_name,
        input_len=input_len,
        output_len=output_len,
        use_timestamps=True,
        memmap=False,
        null_val=None,
        scaler=ZScoreScalerFixed,
        norm_each_channel=False,
        rescale=True,
        metrics=["MAE", "RMSE", "MAPE"],
        target_metric="MAE",
        eval_horizons=[3, 6, 12],
        loss=MaskedMAEWithAux(),
    )
    protocol.update(overrides)
    return protocol
