"""N-HiTS (pytorch-forecasting's network, global over nodes) on LosLoop under the traffic protocol.

Hyperparameters and their sources: `stvfm_plugin.baselines` (one function per model).
Override any of them with --set, e.g. --set num_epochs=20.
"""
from stvfm_plugin.baselines import baseline_config

CFG = baseline_config("NHiTS", "LosLoop")
