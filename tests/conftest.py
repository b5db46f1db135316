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


def pytest_configure(config) -> None:
    """Under pytest-xdist (`-n N`) each worker, and every run it starts, uses one CPU thread, so that N workers share
    the cores instead of N times every core's threads contending for them."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        os.environ["OMP_NUM_THREADS"] = "1"  # inherited by the runs that tests start as subprocesses
        torch.set_num_threads(1)


@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Path:
    """A fresh working directory (BasicTS reads datasets/ and writes checkpoints/ relative to it)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def tiny_dataset(workdir) -> Path:
    """A small synthetic set `datasets/Tiny` (12 nodes, 4 days at 5 min) in the working directory."""
    from stvfm_plugin.data.synth import synth_dataset
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


@pytest.fixture(scope="session")
def tiny_language_models(tmp_path_factory) -> dict:
    """Random 6-layer GPT-2 and BERT models, 32 wide, saved as Hugging Face folders (stand-ins for gpt2)."""
    import torch
    from transformers import BertConfig, BertModel, GPT2Config, GPT2Model

    root = tmp_path_factory.mktemp("lm")
    torch.manual_seed(0)
    GPT2Model(GPT2Config(n_embd=32, n_layer=6, n_head=2, vocab_size=64, n_positions=128)).save_pretrained(root / "gpt2")
    BertModel(BertConfig(hidden_size=32, num_hidden_layers=6, num_attention_heads=2, intermediate_size=64,
                         vocab_size=64, max_position_embeddings=64)).save_pretrained(root / "bert")
    return {"gpt2": root / "gpt2", "bert": root / "bert"}
