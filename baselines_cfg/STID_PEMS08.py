"""STID on PEMS08 (traffic flow, 170 sensors, 5 min), the PEMS08 protocol of BasicTS.

Hyperparameters are those of BasicTS's own STID/PEMS08 config: lr 0.002, weight decay 1e-4,
MultiStepLR at epochs [1, 50, 80] x 0.5, gradient clipping at 5, batch 64, 100 epochs; STID with
3 layers of width 32 plus 32-wide node, time-of-day (288 slots) and day-of-week embeddings.
Prepare the data first: python -m stvfm_plugin.data prepare --preset PEMS08 --src <raw PEMS08 folder>
"""
from basicts.configs import BasicTSForecastingConfig
from basicts.models.STID import STID, STIDConfig
from basicts.runners.callback import GradientClipping
from torch.optim.lr_scheduler import MultiStepLR

from stvfm_plugin.protocols import traffic_protocol

CFG = BasicTSForecastingConfig(
    model=STID,
    model_config=STIDConfig(
        input_len=12, output_len=12, num_features=170,
        input_hidden_size=32, num_layers=3, spatial_hidden_size=32,
        if_time_in_day=True, if_day_in_week=True, num_time_in_day=288, num_day_in_week=7,
        tid_hidden_size=32, diw_hidden_size=32),
    **traffic_protocol("PEMS08"),
    num_epochs=100,
    batch_size=64,
    optimizer_params={"lr": 0.002, "weight_decay": 1e-4},
    lr_scheduler=MultiStepLR,
    lr_scheduler_params={"milestones": [1, 50, 80], "gamma": 0.5},
    callbacks=[GradientClipping(5.0)],
)
