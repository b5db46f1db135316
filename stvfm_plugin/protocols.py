"""The evaluation protocol every config of this project shares.

The traffic protocol of BasicTS's PEMS benchmarks: 12 steps in, 12 out; readings equal to 0 are
missing and masked in loss and metrics; one global z-score fitted on the training split
(`norm_each_channel=False`); metrics in data units (`rescale=True`): masked MAE, RMSE and MAPE
overall and at horizons 3, 6 and 12; best checkpoint by validation MAE.
"""
from __future__ import annotations

from typing import Any

from .losses import MaskedMAEWithAux
from .scaler import ZScoreScalerFixed


def traffic_protocol(dataset_name: str, input_len: int = 12, output_len: int = 12, **overrides: Any) -> dict:
    """Keyword arguments of `BasicTSForecastingConfig` for the traffic protocol on `dataset_name`."""
    protocol = dict(
        dataset_name=dataset_name,
        input_len=input_len,
        output_len=output_len,
        use_timestamps=True,
        memmap=False,
        null_val=0.0,
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
