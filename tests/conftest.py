"""Shared fixtures. Every test works in its own temporary directory; nothing is written into the repo."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("STVFM_SHARED", REPO.parent / "shared"))
CONFIGS = REPO / "baselines_cfg"

needs_shared = pytest.mark.skipif(
    not (SHARED / "data").is_dir(),
    reason=f"shared assets not found at {SHARED} (set STVFM_SHARED to the folder holding data/ and weights/)")


@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Path:
    """A fresh working directory (BasicTS reads datasets/ and writes checkpoints/ relative to it)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def tiny_dataset(workdir) -> Path:
    """A small synthetic set `datasets/Tiny` (12 nodes, 4 days at 5 min) in the working directory."""
    from stvfm_plugin.data.commands import synth_dataset
    from stvfm_plugin.data.synth import SynthOptions

    return synth_dataset(workdir / "datasets", "Tiny", SynthOptions(num_nodes=12, num_steps=288 * 4, seed=1))


def write_config(folder: Path, body: str, name: str = "cfg.py") -> Path:
    path = folder / name
    path.write_text(body)
    return path


STID_TINY = """
from basicts.configs import BasicTSForecastingConfig
from basicts.models.STID import STID, STIDConfig
from stvfm_plugin.protocols import traffic_protocol

CFG = BasicTSForecastingConfig(
    model=STID,
    model_config=STIDConfig(input_len=12, output_len=12, num_features=12, if_time_in_day=True,
                            if_day_in_week=True, num_time_in_day=288, num_layers=1),
    **traffic_protocol("Tiny"),
    num_epochs=2, batch_size=32, optimizer_params={"lr": 0.002, "weight_decay": 1e-4},
)
"""


def python() -> str:
    return sys.executable


def finite_metrics(metrics: dict) -> bool:
    return all(np.isfinite(v) for group in metrics.values() for v in group.values())
