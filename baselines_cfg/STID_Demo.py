"""STID on the embedded synthetic demo set (generated on first use): a one-minute CPU run.

The demo set is 64 road sensors, 14 days at 5-minute steps (see `stvfm_plugin.data.synth`);
the protocol is the PEMS one (12 -> 12, zeros masked, global z-score, MAE/RMSE/MAPE).
"""
from basicts.configs import BasicTSForecastingConfig
from basicts.models.STID import STID, STIDConfig
from basicts.runners.callback import GradientClipping

from stvfm_plugin.protocols import traffic_protocol

CFG = BasicTSForecastingConfig(
    model=STID,
    model_config=STIDConfig(
        input_len=12, output_len=12, num_features=64,
        input_hidden_size=32, num_layers=3, spatial_hidden_size=32,
        if_time_in_day=True, if_day_in_week=True, num_time_in_day=288, num_day_in_week=7,
        tid_hidden_size=32, diw_hidden_size=32),
    **traffic_protocol("Demo"),
    synthetic_dataset=dict(num_nodes=64, num_steps=288 * 14, step_minutes=5, seed=0),
    num_epochs=5,
    batch_size=64,
    optimizer_params={"lr": 0.002, "weight_decay": 1e-4},
    callbacks=[GradientClipping(5.0)],
)
