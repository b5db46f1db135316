"""ST-VFM on SZ-taxi (Shenzhen, 156 roads, taxi speed, 15 min, 31 days), sized for a 2-core CPU.

Backbone: DINOv2 ViT-S/14 (first 2 blocks), frozen, 3 x 3 cells (up to 9 nodes) per token;
spectral layout of the road graph (no coordinates).
Weights: export STVFM_BACKBONE_WEIGHTS=<folder with dinov2_vits14.safetensors> (or the timm hub).
Prepare: python -m stvfm_plugin.data prepare --preset SZTaxi --src ../shared/data/sz_taxi
"""
from basicts.configs import BasicTSForecastingConfig
from basicts.runners.callback import EarlyStopping, GradientClipping
from torch.optim.lr_scheduler import MultiStepLR

from stvfm_plugin.models.stvfm import STVFM, STVFMConfig
from stvfm_plugin.protocols import traffic_protocol

CFG = BasicTSForecastingConfig(
    model=STVFM,
    model_config=STVFMConfig(
        input_len=12, output_len=12, num_features=156, dataset_dir="datasets/SZTaxi",
        backbone="dinov2_vits14", vfm_layers=2, steps_per_day=96),
    **traffic_protocol("SZTaxi"),
    num_epochs=40,
    batch_size=32,
    optimizer_params={"lr": 1e-3, "weight_decay": 1e-4},
    lr_scheduler=MultiStepLR,
    lr_scheduler_params={"milestones": [10, 20], "gamma": 0.3},
    callbacks=[GradientClipping(5.0), EarlyStopping(patience=5)],
)
