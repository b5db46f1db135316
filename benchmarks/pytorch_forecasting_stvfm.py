"""ST-VFM trained the pytorch-forecasting way on the prepared Los-loop set; prints test MAE / RMSE.

    python -m stvfm_plugin.data prepare --preset LosLoop --src ../shared/data/los_loop   # once
    STVFM_BACKBONE_WEIGHTS=../shared/weights python benchmarks/pytorch_forecasting_stvfm.py --epochs 1

The data go into a wide `TimeSeriesDataSet` (one time index, one target column per sensor), the model
is `STVFMForecaster.from_dataset(...)`, training is a Lightning `Trainer`. Each target is normalised by
pytorch-forecasting's default per-window normaliser, not BasicTS's global z-score, so the numbers are
this library's protocol, not the leaderboard's.
"""
from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pandas as pd
import torch
from pytorch_forecasting.data import TimeSeriesDataSet

from stvfm_plugin.data.layout import read_meta
from stvfm_plugin.pytorch_forecasting_model import STVFMForecaster


def wide_frame(folder: Path) -> tuple[pd.DataFrame, int, int]:
    parts = [np.load(folder / f"{split}_data.npy") for split in ("train", "val", "test")]
    values = np.concatenate([p[..., 0] if p.ndim == 3 else p for p in parts])  # [L, N]
    frame = pd.DataFrame(values, columns=[f"node_{i}" for i in range(values.shape[1])])
    frame["time_idx"], frame["series"] = np.arange(len(frame)), "all"
    return frame, len(parts[0]), len(parts[0]) + len(parts[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset-dir", default="datasets/LosLoop", help="prepared dataset folder")
    parser.add_argument("--backbone", default="dinov2_vits14")
    parser.add_argument("--vfm-layers", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--max-steps", type=int, default=-1, help="stop after this many steps (-1: whole epochs)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--pretrained", type=int, default=1, help="0: random backbone (a quick check)")
    args = parser.parse_args()
    folder = Path(args.dataset_dir)
    if not (folder / "meta.json").is_file():
        raise SystemExit(f"error: no prepared dataset in {folder}; run python -m stvfm_plugin.data prepare "
                         "--preset LosLoop --src ../shared/data/los_loop first")
    frame, val_start, test_start = wide_frame(folder)
    targets = [c for c in frame if c.startswith("node_")]
    train = TimeSeriesDataSet(frame[frame.time_idx < val_start], time_idx="time_idx", target=targets,
                              group_ids=["series"], time_varying_unknown_reals=targets, min_encoder_length=12,
                              max_encoder_length=12, min_prediction_length=12, max_prediction_length=12)
    val = TimeSeriesDataSet.from_dataset(train, frame[frame.time_idx < test_start], min_prediction_idx=val_start,
                                         stop_randomization=True)
    test = TimeSeriesDataSet.from_dataset(train, frame, min_prediction_idx=test_start, stop_randomization=True)
    print(f"{read_meta(folder)['name']}: {len(targets)} target columns; windows train {len(train)}, "
          f"val {len(val)}, test {len(test)}", flush=True)
    torch.manual_seed(1)
    model = STVFMForecaster.from_dataset(train, backbone=args.backbone, vfm_layers=args.vfm_layers,
                                         pretrained=bool(args.pretrained), layout_dataset=str(folder),
                                         learning_rate=1e-3)
    for line in model.network.build_report:
        print(line, flush=True)
    trainer = pl.Trainer(max_epochs=args.epochs, max_steps=args.max_steps, accelerator="cpu", logger=False,
                         enable_checkpointing=False, gradient_clip_val=5.0)
    start = time.time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(model, train.to_dataloader(train=True, batch_size=args.batch_size),
                    val.to_dataloader(train=False, batch_size=args.batch_size))
        result = model.predict(test.to_dataloader(train=False, batch_size=args.batch_size), return_y=True,
                               trainer_kwargs=dict(logger=False, enable_progress_bar=False))
    forecast = result.output  # [windows, 12, N]
    actual = torch.stack(list(result.y[0]), dim=-1)  # [windows, 12, N]
    mask = actual != 0  # zeros are missing readings, as in the BasicTS protocol
    error = (forecast - actual)[mask]
    print(f"trained {time.time() - start:.0f} s; test windows {len(forecast)}: "
          f"MAE {error.abs().mean():.3f}  RMSE {error.pow(2).mean().sqrt():.3f}", flush=True)


if __name__ == "__main__":
    main()
