"""DeepAR (pytorch-forecasting's network, global over nodes) on PEMS08 under the traffic protocol.

Trained on its Gaussian likelihood; scored like every model on the mean of its sample paths.
Hyperparameters and their sources: `stvfm_plugin.baselines` (one function per model).
"""
from stvfm_plugin.baselines import baseline_config

CFG = baseline_config("DeepAR", "PEMS08")
