"""Graph WaveNet (needs a dataset with a graph) on any prepared dataset, under the traffic protocol.

Run: python -m basicts.run -c baselines_cfg/GWNet.py --dataset NAME
The dataset's facts (nodes, step, calendar features, null value, graph) come from the prepared dataset NAME; the
hyperparameters and their sources are in `stvfm_plugin.baselines`. Override any with --set.
"""
from stvfm_plugin.baselines import baseline_config

CFG = baseline_config("GWNet")
