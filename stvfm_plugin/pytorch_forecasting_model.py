"""ST-VFM for pytorch-forecasting users: `STVFMForecaster`, a pytorch-forecasting `BaseModel`.

It wraps the same `STVFM` module as the BasicTS plugin and trains with a Lightning `Trainer` on a
`TimeSeriesDataSet` in the wide layout of spatio-temporal data: one time index, one target column
per node (a multi-target data set, one group). Build it with `STVFMForecaster.from_dataset(dataset,
...)`; every `STVFMConfig` field can be passed as a keyword (e.g. `backbone`, `vfm_layers`,
`pretrained`), and `layout_dataset` names a prepared dataset whose road graph and coordinates place the
nodes on the token grid. `predict` returns forecasts `[samples, T_out, N]`.

Each target is standardised with the data set's own target normaliser (`target_scale`), ST-VFM
forecasts in that space, and the library transforms the forecasts back.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional

import torch
from pytorch_forecasting.data import TimeSeriesDataSet
from pytorch_forecasting.metrics import MAE, MultiLoss
from pytorch_forecasting.models import BaseModel

from .data.info import DatasetInfo
from .errors import UserError
from .models.stvfm import STVFM, STVFMConfig


class STVFMForecaster(BaseModel):
    """ST-VFM as a pytorch-forecasting model.

    Args:
        num_nodes: Target columns N.
        input_len: Encoder length T.
        output_len: Prediction length T_out.
        stvfm: Further `STVFMConfig` fields.
        layout_dataset: A prepared dataset (its name, or its folder) whose graph and coordinates
            give the token layout; None: the layout from the config alone (identity).

    Shapes:
        x["encoder_target"]: N x [B, T] -> prediction N x [B, T_out] (one per target column)
    """

    def __init__(self, num_nodes: int, input_len: int, output_len: int, stvfm: Dict[str, Any] | None = None,
                 layout_dataset: Optional[str] = None, **kwargs: Any) -> None:
        self.save_hyperparameters(ignore=["loss", "logging_metrics"])
        if "loss" not in kwargs:
            kwargs["loss"] = MultiLoss([MAE() for _ in range(num_nodes)]) if num_nodes > 1 else MAE()
        super().__init__(**kwargs)
        settings = dict(use_temporal_context=False, **(stvfm or {}))
        structure = {}
        if layout_dataset is not None:
            info = DatasetInfo.load(layout_dataset)
            structure = dict(adj=info.graph(), coords=info.coords(), grid_shape=info.grid_shape,
                             channel_names=info.channel_names)
        self.network = STVFM(STVFMConfig(input_len=input_len, output_len=output_len, num_features=num_nodes,
                                         **settings), **structure)

    @classmethod
    def from_dataset(cls, dataset: TimeSeriesDataSet, **kwargs: Any) -> "STVFMForecaster":
        """Build from a wide `TimeSeriesDataSet`; keywords other than BaseModel's go to `STVFMConfig`."""
        targets = list(dataset.target_names)
        if dataset.min_encoder_length != dataset.max_encoder_length:
            raise UserError("STVFMForecaster needs a fixed encoder length: build the TimeSeriesDataSet with "
                            "min_encoder_length == max_encoder_length.")
        if dataset.min_prediction_length != dataset.max_prediction_length:
            raise UserError("STVFMForecaster needs a fixed prediction length: build the TimeSeriesDataSet with "
                            "min_prediction_length == max_prediction_length.")
        fields = set(STVFMConfig.__dataclass_fields__)
        stvfm = {k: kwargs.pop(k) for k in list(kwargs) if k in fields}
        return super().from_dataset(dataset, num_nodes=len(targets), input_len=dataset.max_encoder_length,
                                    output_len=dataset.max_prediction_length, stvfm=stvfm, **kwargs)

    def _scales(self, x: Dict[str, Any]) -> List[torch.Tensor]:
        scale = x["target_scale"]
        return list(scale) if isinstance(scale, (list, tuple)) else [scale]

    def forward(self, x: Dict[str, Any]) -> Dict[str, Any]:
        targets = x["encoder_target"]
        targets = list(targets) if isinstance(targets, (list, tuple)) else [targets]
        scales = self._scales(x)
        normalised = [(y - s[:, :1]) / s[:, 1:] for y, s in zip(targets, scales)]  # N x [B, T]
        inputs = torch.stack(normalised, dim=-1)  # [B, T, N]
        out = self.network(inputs)
        prediction = out["prediction"] if isinstance(out, dict) else out  # [B, T_out, N]
        per_target = list(prediction.unbind(dim=-1))  # N x [B, T_out]
        per_target = per_target if len(per_target) > 1 else per_target[0]
        return self.to_network_output(prediction=self.transform_output(per_target, target_scale=x["target_scale"]))

    def predict(self, data, *args: Any, **kwargs: Any):
        """pytorch-forecasting's `predict`; point forecasts come back as one tensor `[samples, T_out, N]`."""
        result = super().predict(data, *args, **kwargs)
        if isinstance(result, (list, tuple)) and result and all(torch.is_tensor(r) for r in result):
            return torch.stack(list(result), dim=-1)  # [samples, T_out, N]
        if hasattr(result, "output") and isinstance(result.output, (list, tuple)):
            return result._replace(output=torch.stack(list(result.output), dim=-1))
        return result
