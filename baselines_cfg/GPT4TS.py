"""GPT4TS (frozen GPT-2, first 6 layers) on any prepared dataset, under the traffic protocol.

Run: python -m basicts.run -c baselines_cfg/GPT4TS.py --dataset NAME
The dataset's facts (nodes, step, calendar features, null value, graph) come from the prepared dataset NAME; the
hyperparameters and their sources are in `stvfm_plugin.baselines`. Override any with --set.
"""
from stvfm_plugin.baselines import baseline_config

CFG = baseline_config("GPT4TS")
