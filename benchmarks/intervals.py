"""Coverage of the interval methods (`stvfm_plugin.conformal.METHODS`) on trained runs: which one holds its nominal
coverage on the test split, and how wide it is.

    python benchmarks/intervals.py RUN [RUN ...] [--levels 0.8 0.9] [--out benchmarks/results/intervals.md]

Each RUN is a run folder (its best checkpoint is used). The validation windows calibrate `split` and `scaled`; `recent`
uses the latest validation windows, then rolls through the test split with the windows already known. The test split
is only scored. Bounds are raised to the data's floor for every method.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List

import numpy as np

from stvfm_plugin import Forecaster
from stvfm_plugin.conformal import METHODS, calibrate, coverage


def windows(forecaster: Forecaster, split: str, batch: int = 64):
    """Forecasts, targets, their mask, inputs and the inputs' mask of every window of a split (the run's test path)."""
    folder = forecaster.dataset.folder
    data, stamps = (np.load(folder / f"{split}_{kind}.npy") for kind in ("data", "timestamps"))
    t_in, t_out = forecaster.input_len, forecaster.output_len
    starts = range(len(data) - t_in - t_out + 1)
    inputs = np.stack([data[i:i + t_in] for i in starts]).astype(np.float64)
    targets = np.stack([data[i + t_in:i + t_in + t_out] for i in starts]).astype(np.float64)
    prediction = np.concatenate([forecaster.predict(
        inputs[k:k + batch], np.stack([stamps[i:i + t_in] for i in starts[k:k + batch]]),
        np.stack([stamps[i + t_in:i + t_in + t_out] for i in starts[k:k + batch]])) for k in range(0, len(inputs), batch)])
    null = forecaster.dataset.null_val
    observed = (lambda a: np.isfinite(a) & (a != null)) if null is not None else np.isfinite
    return prediction.reshape(targets.shape), targets, observed(targets), inputs, observed(inputs)


def measure(run: Path, levels: List[float]) -> List[str]:
    forecaster = Forecaster.load(run)
    val, test = windows(forecaster, "val"), windows(forecaster, "test")
    floor = forecaster.dataset.floor
    rows = []
    for method in METHODS:
        calibration = calibrate(*val[:3], levels, method=method, inputs=val[3], input_mask=val[4], floor=floor)
        found = coverage(*test[:3], calibration, [3, 12], inputs=test[3], input_mask=test[4], history=val[:3])
        for level in levels:
            groups = found[f"{level:g}"]
            rows.append(f"| {forecaster.dataset.name} | {run.name} | {method} | {level:g} | "
                        f"{groups['overall']['coverage']:.3f} | {groups['horizon_3']['coverage']:.3f} | "
                        f"{groups['horizon_12']['coverage']:.3f} | {groups['overall']['width']:.3f} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--levels", type=float, nargs="+", default=[0.9])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    lines = ["| dataset | run | method | level | test coverage | at step 3 | at step 12 | mean width |",
             "|---|---|---|---:|---:|---:|---:|---:|"]
    for run in args.runs:
        lines += measure(run, args.levels)
    command = "python benchmarks/intervals.py " + " ".join(sys.argv[1:])
    text = "\n".join([f"# Interval methods on the test split\n\nMade by `{command}` (calibrated on validation; "
                       "`recent` rolls through the test split with the windows already known).\n", *lines])
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
