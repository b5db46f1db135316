"""ST-VFM on any prepared dataset, under the traffic protocol, sized for a 2-core CPU: frozen DINOv2
ViT-S/14 (first 2 blocks), 3 x 3 cells per token, at most 40 epochs with early stopping. The backbone's
LayerNorms train, the rest of it stays frozen (chosen on validation: benchmarks/results/tune/choice.md); all of it
frozen, as in the paper: --set model_config.train_backbone_norms=False.

Run: python -m basicts.run -c baselines_cfg/STVFM.py --dataset NAME
The dataset's facts (nodes, step, calendar features, null value, graph) come from the prepared dataset NAME; the
hyperparameters and their sources are in `stvfm_plugin.baselines`. Override any with --set.
Weights: export STVFM_BACKBONE_WEIGHTS=<folder with dinov2_vits14.safetensors> (or the timm hub).
Swap the backbone with one entry, e.g. --set model_config.backbone=deit_small.
"""
from stvfm_plugin.baselines import baseline_config

CFG = baseline_config("STVFM")
