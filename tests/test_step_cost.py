"""`benchmarks/step_cost.py`: each model's training step timed in a child process, stopped above a memory limit."""
from __future__ import annotations

import math
import sys

import numpy as np
import pytest

from conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import step_cost  # noqa: E402


def _rows(text: str) -> dict:
    return {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
            for line in text.splitlines() if line.startswith("| ") and not line.startswith("| Model")}


def test_step_cost_times_each_model_and_stops_or_reports_the_ones_that_cannot_run(tiny_dataset, workdir, capsys):
    out = workdir / "cost.md"
    assert step_cost.main(["--dataset", "Tiny", "--models", "STID:batch_size=16", "DLinear", "--set", "STID:num_epochs=3",
                           "--set", "DLinear:model_config.no_such_field=1", "--min-seconds", "0.2",
                           "--out", str(out)]) == 0
    rows = _rows(out.read_text())
    stid = rows["STID:batch_size=16"]
    windows = len(np.load(tiny_dataset / "train_data.npy")) - 12 - 12 + 1
    assert stid[0] == "12" and stid[1] == "16" and stid[2] == "—" and stid[-1] == "measured"
    assert int(stid[5]) == math.ceil(windows / 16)
    step_s = float(stid[4].split()[0])
    assert step_s > 0 and abs(float(stid[6]) - step_s * int(stid[5]) / 60) <= 0.05 + 0.01 * float(stid[6])
    assert float(stid[8]) > 0  # peak memory, GB
    assert rows["DLinear"][-1].startswith("failed (exit 2): error: --set model_config.no_such_field")
    assert "- **STID:batch_size=16**: `num_epochs=3`, `batch_size=16`" in out.read_text()

    assert step_cost.main(["--dataset", "Tiny", "--models", "STID", "--max-gb", "0.01", "--min-seconds", "0"]) == 0
    assert _rows(capsys.readouterr().out)["STID"][-1] == "stopped above 0.01 GB"


@pytest.mark.parametrize("argv, why", [
    (["--dataset", "Tiny", "--models", "STID", "--set", "batch_size=16"], "--set 'batch_size=16': write MODEL:KEY=VALUE"),
    (["--dataset", "Tiny"], "name the models to measure (--models)"),
])
def test_step_cost_refuses_unclear_requests(argv, why):
    with pytest.raises(SystemExit, match=None) as raised:
        step_cost.main(argv)
    assert why in str(raised.value)
