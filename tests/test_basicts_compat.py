"""`stvfm_plugin.basicts_compat`: the fixes of BasicTS 1.1.0 that have no test elsewhere (the package docstring's table
names every fix and its test)."""
from __future__ import annotations

import logging

import numpy as np
from basicts.runners import basicts_runner
from basicts.runners.builder import Builder
from easytorch.device import set_device_type

from stvfm_plugin.basicts_compat.builder import PluginBuilder
from stvfm_plugin.run import describe_run, main
from stvfm_plugin.run_options import RunOptions
from stvfm_plugin.runner import PluginRunner

from conftest import STID_TINY, write_config

#: STID that also takes the dataset's graph, as the models with structure do
PROBE = STID_TINY.replace("from basicts.models.STID import STID, STIDConfig", '''from basicts.models.STID import STID, STIDConfig


class Probe(STID):
    def __init__(self, config, adj=None):
        super().__init__(config)
        self.adj = adj
''').replace("model=STID,", "model=Probe,")


def test_models_get_the_dataset_structure_without_patching_basicts(tiny_dataset, workdir):
    original = Builder.__dict__["_build_model"]
    spec = describe_run(RunOptions(config=write_config(workdir, PROBE), run_dir=workdir / "run"),
                        logging.getLogger("test"))
    set_device_type("cpu")  # as the launcher does
    runner = PluginRunner(spec)
    assert spec.dataset.has_graph and np.array_equal(runner.bare_model.adj, spec.dataset.graph())
    assert Builder.__dict__["_build_model"] is original  # BasicTS's class is never changed ...
    assert basicts_runner.Builder is PluginBuilder and issubclass(PluginBuilder, Builder)  # ... its runner builds
    assert spec.cfg.model.__name__ == "Probe" and isinstance(spec.cfg.model, type)  # through the subclass; cfg intact
    assert runner.model_name == "Probe"


def test_each_run_logs_to_its_own_file(tiny_dataset, workdir):
    cfg = write_config(workdir, STID_TINY)
    runs = [workdir / "first", workdir / "second"]
    for run in runs:  # two runs in one process: easytorch's cached logger would keep writing to the first one's file
        assert main(["-c", str(cfg), "--run-dir", str(run), "--set", "num_epochs=1"]) == 0
    for run, other in (runs, runs[::-1]):
        (log,) = run.glob("training_log_*.log")
        text = log.read_text()
        assert f"Run folder: {run}" in text and str(other) not in text


def test_validation_never_feeds_the_per_horizon_test_meters(tiny_dataset, workdir, monkeypatch):
    from basicts.runners import BasicTSRunner
    from basicts.utils import RunnerStatus

    fed, original = [], BasicTSRunner._eval_on_horizons

    def recording(self, forward_return):  # BasicTS's own method: it adds the batch to the "test @ horizon" meters
        fed.append(self.status)
        return original(self, forward_return)

    monkeypatch.setattr(BasicTSRunner, "_eval_on_horizons", recording)
    assert main(["-c", str(write_config(workdir, STID_TINY)), "--run-dir", str(workdir / "run"),
                 "--set", "num_epochs=1"]) == 0
    assert fed and set(fed) == {RunnerStatus.EVALUATING}  # the final test only, never a validation batch
