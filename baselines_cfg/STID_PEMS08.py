"""STID on PEMS08 (traffic flow, 170 sensors, 5 min), the PEMS08 protocol of BasicTS.

Hyperparameters are those of BasicTS's own STID/PEMS08 config: the model and optimiser of the generic
STID.py (3 layers of width 32 plus 32-wide node, time-of-day and day-of-week embeddings; lr 0.002, weight
decay 1e-4, batch 64), with its PEMS08 schedule: MultiStepLR at epochs [1, 50, 80] x 0.5, gradient clipping
at 5, 100 epochs, no early stopping.
Prepare the data first: python -m stvfm_plugin.data prepare --preset PEMS08 --src <raw PEMS08 folder>
"""
from basicts.runners.callback import GradientClipping
from torch.optim.lr_scheduler import MultiStepLR

from stvfm_plugin.baselines import baseline_config

CFG = baseline_config("STID", "PEMS08", num_epochs=100, lr_scheduler=MultiStepLR,
                      lr_scheduler_params={"milestones": [1, 50, 80], "gamma": 0.5}, callbacks=[GradientClipping(5.0)])
