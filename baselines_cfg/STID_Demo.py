"""STID on the synthetic demo set (generated on first use): a one-minute CPU run.

The demo set, Synth64n14d5m, is named by what it is: 64 road sensors, 14 days of 5-minute steps
(`stvfm_plugin.data.synth`); the protocol is the PEMS one (12 -> 12, zeros masked, global z-score,
MAE/RMSE/MAPE). The same as baselines_cfg/STID.py, for 5 epochs without early stopping.
"""
from basicts.runners.callback import GradientClipping

from stvfm_plugin.baselines import baseline_config
from stvfm_plugin.data.synth import DEMO_NAME

CFG = baseline_config("STID", DEMO_NAME, num_epochs=5, callbacks=[GradientClipping(5.0)])
