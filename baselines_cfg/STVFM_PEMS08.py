"""ST-VFM on PEMS08 (traffic flow, 170 sensors, 5 min), the PEMS08 protocol of STID_PEMS08.py.

Chosen for a GPU run (one GPU, about 2-3 min per epoch for ViT-S at batch 64; not measured on these
CPU-only machines): DINOv2 ViT-S/14, all 12 blocks, 100 epochs, Adam lr 1e-3 with weight decay 1e-4,
MultiStepLR at epochs [20, 50, 80] x 0.5, gradient clipping at 5, early stopping after 15 epochs without
validation gain. Spectral layout of the PEMS08 road graph. Weights: the timm hub, or
STVFM_BACKBONE_WEIGHTS=<file or folder>.
Prepare: python -m stvfm_plugin.data prepare --preset PEMS08 --src <raw PEMS08 folder>
"""
from basicts.configs import BasicTSForecastingConfig
from basicts.runners.callback import EarlyStopping, GradientClipping
from torch.optim.lr_scheduler import MultiStepLR

from stvfm_plugin.models.stvfm import STVFM, STVFMConfig
from stvfm_plugin.protocols import traffic_protocol

CFG = BasicTSForecastingConfig(
    model=STVFM,
    model_config=STVFMConfig(
        input_len=12, output_len=12, backbone="dinov2_vits14", vfm_layers=None),
    **traffic_protocol("PEMS08"),
    num_epochs=100,
    batch_size=64,
    optimizer_params={"lr": 1e-3, "weight_decay": 1e-4},
    lr_scheduler=MultiStepLR,
    lr_scheduler_params={"milestones": [20, 50, 80], "gamma": 0.5},
    callbacks=[GradientClipping(5.0), EarlyStopping(patience=15)],
)
