"""Training cost of leaderboard models under a dataset's protocol, before any of them is trained.

For each model (its committed config, the run's history, the leaderboard's `--set` overrides) this times training
steps (forward, loss, backward, gradient clipping, an Adam step; the config's batch size, random training windows) on
one process with a fixed thread count, and reports seconds per step, steps and minutes per epoch of the training
split, and the process's peak resident memory. Each model runs in a child process of its own, so its peak memory is
its own, and one that passes `--max-gb` is stopped (its row says so) before the machine runs out of memory and the
kernel kills something else, such as a training run beside it.

Writes a Markdown report (generated; never edit it by hand):

    cd benchmarks/work   # holds datasets/TaxiNYC (bash ../leaderboard.sh TaxiNYC prepares it)
    python ../step_cost.py --dataset TaxiNYC --history week-residual --models STID NHiTS GWNet \\
        --set GPT4TS:model_config.backbone=all-minilm-l6-v2 --out ../results/cost/TaxiNYC.md
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def measure_one(model: str, dataset: str, history: str, overrides: Sequence[str], threads: int,
                min_seconds: float) -> dict:
    """The figures of one model, measured in this process (the child's side)."""
    import torch

    sys.path.insert(0, str(HERE))
    from speed import Batches, _read_status_kb, training_step
    from stvfm_plugin.config_tools import parse_override
    from stvfm_plugin.models.factory import build_model
    from stvfm_plugin.protocols import MODEL_INPUT_LEN
    from stvfm_plugin.run import describe_run, flush_denormals
    from stvfm_plugin.run_options import RunOptions

    torch.set_num_threads(threads)
    flush_denormals()  # as every run does
    torch.manual_seed(0)
    log = logging.getLogger("step_cost")
    options = RunOptions(config=REPO / "baselines_cfg" / f"{model}.py", dataset=dataset, history=history,
                         overrides=[parse_override(o) for o in overrides])
    spec = describe_run(options, log)
    cfg, info = spec.cfg, spec.dataset
    reads = cfg.get(MODEL_INPUT_LEN) or cfg.input_len  # `weeks-residual`: the model reads the last week of its window
    batches = Batches(info.folder, reads, cfg.output_len)
    windows = len(batches.data) - cfg.input_len - cfg.output_len + 1  # the run's windows: every start of its window
    net = build_model(cfg, info)
    net.train()
    trainable = [p for p in net.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(trainable, lr=(cfg.optimizer_params or {}).get("lr", 1e-3))
    start = time.perf_counter()
    training_step(net, cfg.loss, optimizer, batches(cfg.batch_size))  # warm-up, timed alone
    first = time.perf_counter() - start
    steps, start = 0, time.perf_counter()
    while steps < 1 or time.perf_counter() - start < min_seconds:
        training_step(net, cfg.loss, optimizer, batches(cfg.batch_size))
        steps += 1
    step_s = (time.perf_counter() - start) / steps
    model_config = cfg.model_config
    patches = ({"patch_len": model_config.patch_len, "patch_stride": model_config.patch_stride}
               if hasattr(model_config, "patch_len") and hasattr(model_config, "patch_stride") else {})
    return {"model": model, "input_len": reads, "batch_size": cfg.batch_size,
            "series": int(batches.data.shape[1]), "windows_per_epoch": windows,
            "steps_per_epoch": math.ceil(windows / cfg.batch_size), "first_step_s": first,
            "step_s": step_s, "timed_steps": steps, "peak_gb": (_read_status_kb("VmHWM") or 0) / 1024 ** 2,
            "trainable_params": sum(p.numel() for p in trainable), "patches": patches, "overrides": list(overrides)}


def measure(model: str, args: argparse.Namespace, overrides: List[str], echo) -> dict:
    """One row (a model, or `MODEL:KEY=VALUE,...`) in a child process, stopped above `--max-gb` (the parent's side)."""
    name = model.partition(":")[0]
    command = [sys.executable, __file__, "--one", name, "--dataset", args.dataset, "--history", args.history,
               "--threads", str(args.threads), "--min-seconds", str(args.min_seconds)]
    for override in overrides:
        command += ["--set", f"{name}:{override}"]
    sys.path.insert(0, str(HERE))
    from speed import _read_status_kb

    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak, over = 0.0, False
    while child.poll() is None:
        peak = max(peak, (_read_status_kb("VmRSS", str(child.pid)) or 0) / 1024 ** 2)
        if peak > args.max_gb:
            child.kill()
            over = True
            break
        time.sleep(0.1)
    out, err = child.communicate()
    row: Dict = {"model": model, "overrides": overrides}
    if over:
        row["status"] = f"stopped above {args.max_gb:g} GB"
        row["peak_gb"] = peak
    elif child.returncode != 0:
        lines = [line for line in err.strip().splitlines() if line.strip()]
        row["status"] = f"failed (exit {child.returncode}): {lines[-1] if lines else 'no message'}"
    else:
        row.update(json.loads(out.strip().splitlines()[-1]), model=model)
        row["status"] = "measured"
    echo(f"{model}: {row['status']}" + (f", {row['step_s']:.3g} s/step, {row['peak_gb']:.1f} GB"
                                        if "step_s" in row else ""))
    return row


def report(rows: List[dict], args: argparse.Namespace, command: str) -> str:
    import platform

    import torch

    lines = [
        f"# Training cost under the {args.dataset} protocol",
        "",
        "Generated by `benchmarks/step_cost.py` (do not edit by hand). Command, from `benchmarks/work/`:",
        "",
        f"    {command}",
        "",
        f"- Machine: {os.cpu_count()} logical cores, {args.threads} thread(s) per model; torch {torch.__version__}, "
        f"Python {platform.python_version()}; {time.strftime('%Y-%m-%d')}.",
        f"- Protocol: `--history {args.history}`; each model's committed config and batch size, with the overrides "
        "listed. Training only: forward, loss, backward, gradient clipping and an Adam step on random training "
        "windows; the first step is timed alone, then steps for at least "
        f"{args.min_seconds:g} s (at least one). Minutes per epoch = seconds per step x the steps of one pass over the "
        "training split.",
        "- Peak memory: the child process's peak resident set (Python, torch, the data and the model). A model above "
        f"{args.max_gb:g} GB was stopped.",
        "- Other processes may have shared the machine (see the text that cites this file); compare rows of one file.",
        "",
        "| Model | Input steps | Batch | Patches (len / stride) | Trainable params | s / step (first) | Steps / epoch "
        "| Min / epoch | Hours / 10 epochs | Peak GB | Status |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        if "step_s" in r:
            epoch_min = r["step_s"] * r["steps_per_epoch"] / 60
            patches = f"{r['patches']['patch_len']} / {r['patches']['patch_stride']}" if r["patches"] else "—"
            lines.append(f"| {r['model']} | {r['input_len']} | {r['batch_size']} | {patches} | "
                         f"{r['trainable_params']:,} | {r['step_s']:.3g} ({r['first_step_s']:.3g}) | "
                         f"{r['steps_per_epoch']} | {epoch_min:.1f} | {epoch_min / 6:.1f} | {r['peak_gb']:.1f} | "
                         f"{r['status']} |")
        else:
            peak = f"{r['peak_gb']:.1f}" if "peak_gb" in r else "—"
            lines.append(f"| {r['model']} | — | — | — | — | — | — | — | — | {peak} | {r['status']} |")
    lines += ["", "Overrides, as run:", ""]
    lines += [f"- **{r['model']}**: " + (", ".join(f"`{o}`" for o in r["overrides"]) or "none") for r in rows]
    return "\n".join(lines) + "\n"


def build_parser() -> argparse.ArgumentParser:
    from stvfm_plugin.protocols import HISTORIES

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", required=True, help="prepared dataset (under the working directory's datasets/)")
    parser.add_argument("--history", default="recent", choices=HISTORIES,
                        help="the protocol's history (as basicts.run --history)")
    parser.add_argument("--models", nargs="+", default=[],
                        help="leaderboard rows: MODEL (baselines_cfg/MODEL.py) or MODEL:KEY=VALUE[,KEY=VALUE...]")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="MODEL:KEY=VALUE",
                        help="an override of one model's config, as the leaderboard's --set (repeatable)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads per model (default 1, as the leaderboard)")
    parser.add_argument("--min-seconds", type=float, default=8.0,
                        help="timed training after the first step (default 8)")
    parser.add_argument("--max-gb", type=float, default=16.0,
                        help="stop a model whose resident memory passes this (default 16)")
    parser.add_argument("--out", help="the Markdown report to write (default: print it)")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # the child: measure this model, print its figures as JSON
    return parser


def overrides_of(model: str, overrides: Sequence[str]) -> List[str]:
    """The `KEY=VALUE` overrides of `model` among `MODEL:KEY=VALUE` ones."""
    picked = []
    for item in overrides:
        name, colon, rest = item.partition(":")
        if not colon or "=" not in rest:
            raise SystemExit(f"error: --set {item!r}: write MODEL:KEY=VALUE")
        if name == model:
            picked.append(rest)
    return picked


def row_overrides(row: str, overrides: Sequence[str]) -> List[str]:
    """A row's overrides: the `--set` ones of its model, then those of its name (`GWNet:batch_size=16`, the
    leaderboard's row names)."""
    model, _, own = row.partition(":")
    return overrides_of(model, overrides) + [o for o in own.split(",") if o]


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if args.one:
        from stvfm_plugin.errors import exit_status

        logging.basicConfig(level=logging.WARNING)
        return exit_status(lambda: print(json.dumps(measure_one(
            args.one, args.dataset, args.history, overrides_of(args.one, args.overrides), args.threads,
            args.min_seconds))))
    if not args.models:
        raise SystemExit("error: name the models to measure (--models)")
    echo = lambda s: print(f"[step_cost] {s}", file=sys.stderr, flush=True)  # noqa: E731
    rows = [measure(row, args, row_overrides(row, args.overrides), echo) for row in args.models]
    text = report(rows, args, "python ../step_cost.py " + " ".join(argv if argv is not None else sys.argv[1:]))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text, encoding="utf-8")
        echo(f"wrote {args.out}")
    else:
        print(text, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
