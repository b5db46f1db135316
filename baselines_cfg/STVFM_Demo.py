"""ST-VFM on the synthetic demo set (generated on first use): about a minute on a 2-core CPU.

The demo set, Synth64n14d5m, is named by what it is: 64 road sensors, 14 days of 5-minute steps
(`stvfm_plugin.data.synth`). Backbone: DINOv2 ViT-S/14, first 4 blocks. Weights come from
backbone_weights, $STVFM_BACKBONE_WEIGHTS (e.g. a folder holding dinov2_vits14.safetensors) or the
timm hub. This demo alone falls back to a random backbone when none can be found, and says so in a
warning at the start and next to its metrics. Swap the backbone with one line, e.g.
--set model_config.backbone=deit_tiny.
"""
from basicts.configs import BasicTSForecastingConfig
from basicts.runners.callback import GradientClipping

from stvfm_plugin.data.synth import DEMO_NAME
from stvfm_plugin.models.stvfm import STVFM, STVFMConfig
from stvfm_plugin.protocols import traffic_protocol

CFG = BasicTSForecastingConfig(
    model=STVFM,
    model_config=STVFMConfig(input_len=12, output_len=12, backbone="dinov2_vits14", vfm_layers=4,
                             allow_random_fallback=True),
    **traffic_protocol(DEMO_NAME),
    num_epochs=3,
    batch_size=32,
    optimizer_params={"lr": 1e-3, "weight_decay": 1e-4},
    callbacks=[GradientClipping(5.0)],
)
