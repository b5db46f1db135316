"""ST-VFM for pytorch-forecasting users: `STVFMForecaster` trains with a Lightning Trainer on a wide
TimeSeriesDataSet and predicts [samples, T_out, N]."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import torch

pytest.importorskip("pytorch_forecasting")
import lightning.pytorch as pl  # noqa: E402
from pytorch_forecasting.data import TimeSeriesDataSet  # noqa: E402
from pytorch_forecasting.models import BaseModel  # noqa: E402

from stvfm_plugin.errors import UserError  # noqa: E402
from stvfm_plugin.models.stvfm import STVFM  # noqa: E402
from stvfm_plugin.pytorch_forecasting_model import STVFMForecaster  # noqa: E402


def wide_frame(n: int = 5, steps: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    t = np.arange(steps)
    frame = pd.DataFrame({f"node_{i}": 50 + 10 * np.sin(2 * np.pi * t / 48 + i) + rng.normal(size=steps)
                          for i in range(n)})
    frame["time_idx"], frame["series"] = t, "all"
    return frame


def wide_dataset(frame: pd.DataFrame, t_out: int = 6, **kw) -> TimeSeriesDataSet:
    targets = [c for c in frame if c.startswith("node_")]
    settings = dict(min_encoder_length=12, max_encoder_length=12, min_prediction_length=t_out,
                    max_prediction_length=t_out)
    settings.update(kw)
    return TimeSeriesDataSet(frame[frame.time_idx < 200], time_idx="time_idx", target=targets, group_ids=["series"],
                             time_varying_unknown_reals=targets, **settings)


@pytest.mark.parametrize("n,t_out", [(5, 6), (3, 12)])
def test_trainer_fit_and_predict_shapes(n, t_out):
    frame = wide_frame(n)
    train = wide_dataset(frame, t_out)
    test = TimeSeriesDataSet.from_dataset(train, frame, min_prediction_idx=200, stop_randomization=True)
    torch.manual_seed(0)
    model = STVFMForecaster.from_dataset(train, backbone="test_vit", pretrained=False, learning_rate=1e-3)
    assert isinstance(model, BaseModel) and isinstance(model.network, STVFM)
    before = [p.detach().clone() for p in model.parameters() if p.requires_grad]
    trainer = pl.Trainer(max_steps=3, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(model, train.to_dataloader(train=True, batch_size=8))
        forecast = model.predict(test.to_dataloader(train=False, batch_size=8), trainer_kwargs=dict(logger=False))
    after = [p for p in model.parameters() if p.requires_grad]
    assert any(not torch.equal(a, b) for a, b in zip(after, before))  # the trainer updated ST-VFM
    samples = len(test)
    assert forecast.shape == (samples, t_out, n) and torch.isfinite(forecast).all()
    assert 30 < forecast.mean() < 70  # back in data units (the series swing around 50)


def test_from_dataset_needs_fixed_lengths():
    with pytest.raises(UserError, match="needs a fixed encoder length"):
        STVFMForecaster.from_dataset(wide_dataset(wide_frame(), min_encoder_length=6), backbone="test_vit",
                                     pretrained=False)
    with pytest.raises(UserError, match="needs a fixed prediction length"):
        STVFMForecaster.from_dataset(wide_dataset(wide_frame(), min_prediction_length=3), backbone="test_vit",
                                     pretrained=False)
