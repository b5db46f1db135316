"""Distributed training: two CPU processes under `torch.distributed` (gloo) train ST-VFM and STID with the
plugin's own launcher code (`launch._train`, the function BasicTS's launcher would run on each GPU).

BasicTS's launcher cannot start DDP on CPUs (it counts CUDA devices), so the processes are started with
`torch.multiprocessing`. Checked: both ranks train on different batches but apply the same gradient, every
trainable parameter gets one (no unused-parameter error), validation and test run on rank 0 without
waiting for the others, only rank 0 writes files, and the checkpoint reloads into a plain single-process
evaluation with the same test metrics.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from conftest import STID_TINY, write_config
from test_stvfm import STVFM_TINY

WORLD = 2


def _worker(rank: int, workdir: str, config: str, run_dir: str, rendezvous: str) -> None:
    os.chdir(workdir)
    torch.set_num_threads(1)
    from easytorch.device import set_device_type

    from stvfm_plugin.launch import _train
    from stvfm_plugin.run import describe_run
    from stvfm_plugin.run_options import RunOptions
    from stvfm_plugin.runner import PluginRunner

    records = []
    forward, step = PluginRunner._forward, PluginRunner._optimizer_step

    def recording_forward(self, model, data, *args, **kwargs):  # the batch each rank trains on
        if model is self.model:
            records.append(["inputs", float(data["inputs"].double().sum())])
        return forward(self, model, data, *args, **kwargs)

    def recording_step(self) -> None:  # the gradient each rank applies
        params = [p for p in self.bare_model.parameters() if p.requires_grad]
        records.append(["gradient", float(sum(p.grad.double().sum() for p in params if p.grad is not None)),
                        sum(p.grad is None for p in params)])
        step(self)

    PluginRunner._forward, PluginRunner._optimizer_step = recording_forward, recording_step
    set_device_type("cpu")
    torch.distributed.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=WORLD)
    try:
        options = RunOptions(config=Path(config), run_dir=Path(run_dir), overrides=[("num_epochs", 1)])
        _train(describe_run(options, logging.getLogger("test")))
        torch.save(records, Path(workdir) / f"rank{rank}.pt")
    finally:
        torch.distributed.destroy_process_group()


@pytest.mark.parametrize("body", [STVFM_TINY, STID_TINY], ids=["STVFM", "STID"])
def test_two_gloo_ranks_train_with_averaged_gradients_and_rank0_checkpoints(tiny_dataset, workdir, body):
    config = write_config(workdir, body)
    run_dir = workdir / "run"
    run_dir.mkdir()  # as `launch_training` does before the ranks start (BasicTS's runner would race to create it)
    mp.spawn(_worker, args=(str(workdir), str(config), str(run_dir), str(workdir / "rendezvous")), nprocs=WORLD,
             join=True)
    ranks = [torch.load(workdir / f"rank{r}.pt", weights_only=False) for r in range(WORLD)]
    inputs = [[r[1] for r in rank if r[0] == "inputs"] for rank in ranks]
    gradients = [[r[1] for r in rank if r[0] == "gradient"] for rank in ranks]
    assert len(gradients[0]) == len(gradients[1]) >= 3, gradients
    assert all(a != b for a, b in zip(*inputs))  # each rank trains on its own batches (DistributedSampler) ...
    assert gradients[0] == pytest.approx(gradients[1], rel=1e-6, abs=1e-9)  # ... and applies the averaged gradient
    assert all(r[2] == 0 for rank in ranks for r in rank if r[0] == "gradient")  # every trainable part got one

    logs = sorted(p.name for p in run_dir.glob("training_log_*.log"))
    assert len(logs) == 1 and (run_dir / "test_metrics.json").is_file()  # files come from rank 0 only
    trained = json.loads((run_dir / "test_metrics.json").read_text())
    (best,) = list(run_dir.glob("*_best_val_MAE.pt"))

    from stvfm_plugin.run import main

    assert main(["-c", str(config), "--eval", str(best)]) == 0  # one process, no DDP: the checkpoint reloads
    (evaluated,) = list(run_dir.glob("eval-*/test_metrics.json"))
    assert json.loads(evaluated.read_text())["overall"] == pytest.approx(trained["overall"], rel=1e-5)
