"""STID on LosLoop under the traffic protocol, sized for a 2-core CPU (the leaderboard's budget).

STID hyperparameters of BasicTS's own PEMS configs (lr 0.002, weight decay 1e-4, 3 layers of width 32,
32-wide node / time-of-day / day-of-week embeddings, gradient clipping at 5, batch 64); epochs and the
schedule are those of the matching STVFM_LosLoop.py so that both get the same budget.
Prepare: python -m stvfm_plugin.data prepare --preset LosLoop --src <raw folder>
"""
from basicts.configs import BasicTSForecastingConfig
from basicts.models.STID import STID, STIDConfig
from basicts.runners.callback import EarlyStopping, GradientClipping

from stvfm_plugin.protocols import traffic_protocol

CFG = BasicTSForecastingConfig(
    model=STID,
    model_config=STIDConfig(
        input_len=12, output_len=12, num_features=207,
        input_hidden_size=32, num_layers=3, spatial_hidden_size=32,
        if_time_in_day=True, if_day_in_week=False, num_time_in_day=288, num_day_in_week=7,
        tid_hidden_size=32, diw_hidden_size=32),
    **traffic_protocol("LosLoop"),
    num_epochs=100,
    batch_size=64,
    optimizer_params={"lr": 0.002, "weight_decay": 1e-4},
    callbacks=[GradientClipping(5.0), EarlyStopping(patience=10)],
)
