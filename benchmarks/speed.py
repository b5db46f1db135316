"""Speed benchmark: training and inference throughput, memory and FLOPs of model configs, in one process.

For each row (a config file, overrides, a thread count) on a prepared dataset it measures:

- training windows per second (forward, loss, backward, gradient clipping, Adam step; the config's batch size),
- inference windows per second (`torch.inference_mode()`),
- peak resident memory of the row (the process's peak is reset before each row),
- tokens per window (tokens that pass the frozen backbone: both branches, grid and prefix tokens),
- FLOPs per training window, counted by `torch.utils.flop_counter.FlopCounterMode`,
- achieved GFLOP/s of the frozen blocks (their forward and input-gradient pass timed alone, on the row's
  token batch) as a fraction of a GEMM of the backbone's width timed in the same process and threads.

Then a cost-vs-N table: the row named by `--scale-row` on synthetic graphs of `--scale-nodes` nodes.
Writes a Markdown report (generated; never edit it by hand).

    cd benchmarks/work   # holds datasets/LosLoop (python -m stvfm_plugin.data prepare --preset LosLoop ...)
    STVFM_BACKBONE_WEIGHTS=../../../shared/weights python ../speed.py --dataset LosLoop --out ../results/speed.md
"""
from __future__ import annotations

import argparse
import inspect
import logging
import os
import platform
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from stvfm_plugin.config_tools import parse_override
from stvfm_plugin.cpu_threads import ThreadGovernor
from stvfm_plugin.models.precision import autocast
from stvfm_plugin.data.synth import SynthOptions
from stvfm_plugin.data.synth import synthetic_name
from stvfm_plugin.errors import exit_status
from stvfm_plugin.run import available_cores, describe_run, flush_denormals
from stvfm_plugin.run_options import RunOptions
from stvfm_plugin.models.factory import build_model

REPO = Path(__file__).resolve().parent.parent


@dataclass
class Row:
    """One measured setting: a config, its overrides, the torch thread count, and whether the machine is shared."""

    name: str
    config: str
    threads: int
    overrides: List[str] = field(default_factory=list)
    follow_free: bool = False  # the thread count follows the free cores, as a run's default (`cpu_threads`)
    beside_busy: bool = False  # one busy single-threaded process runs beside the row

    @classmethod
    def parse(cls, text: str) -> "Row":
        """`NAME|CONFIG|THREADS[|key=value,key=value...]`: THREADS a number, `all` (every available core) or `auto`
        (every core, fewer while other processes keep cores busy: a run's default), `+busy` after it to measure beside
        one busy single-threaded process (e.g. `auto+busy`)."""
        parts = text.split("|")
        if len(parts) < 3:
            raise SystemExit(f"error: --row {text!r}: write NAME|CONFIG|THREADS[|key=value,...]")
        threads, plus, busy = parts[2].partition("+")
        if (plus and busy != "busy") or not (threads in ("all", "auto") or threads.isdigit()):
            raise SystemExit(f"error: --row {text!r}: THREADS is a number, all or auto, optionally followed by +busy")
        overrides = [o for o in parts[3].split(",") if o] if len(parts) > 3 else []
        return cls(parts[0], parts[1], available_cores() if threads in ("all", "auto") else int(threads), overrides,
                   follow_free=threads == "auto", beside_busy=bool(plus))

    @property
    def threads_label(self) -> str:
        return f"{self.threads}, fewer while busy" if self.follow_free else str(self.threads)


#: the committed config until issue 30's tuning: every backbone weight frozen
ALL_FROZEN = ["model_config.train_backbone_norms=False"]
#: half precision (`precision`; the whole forward pass unless `precision_scope` says otherwise)
BF16 = "model_config.precision=bf16"
#: (new, old) rows whose training speed ratio the report states by default
SPEEDUPS = [("ST-VFM committed config", "ST-VFM before: 2 blocks, 1 node per token, 1 thread"),
            ("ST-VFM committed config, 1 thread", "ST-VFM all frozen (committed before issue 30), 1 thread"),
            ("ST-VFM committed config, bf16", "ST-VFM committed config"),
            ("ST-VFM committed config, bf16, 1 thread", "ST-VFM committed config, 1 thread")]


def default_rows() -> List[Row]:
    """STID; ST-VFM as it was (2 blocks, one node per token) on one thread and on all cores; ST-VFM as committed,
    plain and with its frozen blocks compiled (the compilation happens in the warm-up steps, not timed); on one
    thread, as the leaderboard trains, ST-VFM as committed and as it was before issue 30 (all of its backbone
    frozen); ST-VFM in bf16 (the whole model, or the frozen blocks alone); STID and ST-VFM beside one busy process,
    with the thread count following the free cores (a run's default) and fixed."""
    cores = available_cores()
    stvfm = str(REPO / "baselines_cfg" / "STVFM.py")
    # the first release's settings: all frozen, one node per token, no residual head layers, its adapter width and
    # dropout
    before = ALL_FROZEN + ["model_config.vfm_layers=2", "model_config.patch_size=1", "model_config.max_tokens=None",
                          "model_config.head_layers=0", "model_config.adapter_hidden=256", "model_config.dropout=0.1"]
    stid = str(REPO / "baselines_cfg" / "STID.py")
    return [
        Row("STID (committed config)", stid, cores, follow_free=True),
        Row("ST-VFM before: 2 blocks, 1 node per token, 1 thread", stvfm, 1, before),
        Row(f"ST-VFM before: 2 blocks, 1 node per token, {cores} threads", stvfm, cores, before),
        Row("ST-VFM committed config", stvfm, cores, follow_free=True),
        Row("ST-VFM committed config + compile_backbone", stvfm, cores, ["model_config.compile_backbone=True"]),
        Row("ST-VFM committed config, 1 thread", stvfm, 1),
        Row("ST-VFM all frozen (committed before issue 30), 1 thread", stvfm, 1, ALL_FROZEN),
        # half precision (issue 46): the whole forward pass in bf16, and the frozen blocks alone
        Row("ST-VFM committed config, bf16", stvfm, cores, [BF16], follow_free=True),
        Row("ST-VFM committed config, bf16 frozen blocks only", stvfm, cores,
            [BF16, "model_config.precision_scope=backbone"], follow_free=True),
        Row("ST-VFM committed config, bf16, 1 thread", stvfm, 1, [BF16]),
        # the shared machine: a run's default beside one busy process, and the same with the thread count fixed
        Row("STID (committed config), shared machine", stid, cores, follow_free=True, beside_busy=True),
        Row(f"STID (committed config), shared machine, --threads {cores}", stid, cores, beside_busy=True),
        Row("ST-VFM committed config, shared machine", stvfm, cores, follow_free=True, beside_busy=True),
        Row(f"ST-VFM committed config, shared machine, --threads {cores}", stvfm, cores, beside_busy=True),
    ]


#: the shared-machine target: an epoch beside one busy process takes at most this times its quiet time
SHARED_TARGET = 2.5


@contextmanager
def busy_neighbour(on: bool):
    """One busy single-threaded process beside the block (`python -c "while True: pass"`), if `on`."""
    if not on:
        yield
        return
    process = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)  # running before the first timed step
        yield
    finally:
        process.kill()
        process.wait()


# ---- measuring ------------------------------------------------------------------------------------

def _read_status_kb(key: str, pid: str = "self") -> Optional[int]:
    """A `/proc/<pid>/status` entry in kB (`VmRSS`, `VmHWM`), or None where there is none."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def reset_peak_memory() -> bool:
    """Reset this process's peak resident set (Linux `clear_refs`); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
        return True
    except OSError:
        return False


class Batches:
    """Random training windows of a prepared dataset, z-scored with the training split's mean and std."""

    def __init__(self, folder: Path, input_len: int, output_len: int, seed: int = 0) -> None:
        data = np.load(folder / "train_data.npy")
        data = data[..., 0] if data.ndim == 3 else data
        self.stamps = np.load(folder / "train_timestamps.npy").astype(np.float32)
        self.data = ((data - data.mean()) / (data.std() or 1.0)).astype(np.float32)
        self.input_len, self.output_len = input_len, output_len
        self.rng = np.random.default_rng(seed)

    @property
    def windows_per_epoch(self) -> int:
        """Training windows of one epoch: every start of the training split, as BasicTS's dataset counts them."""
        return len(self.data) - self.input_len - self.output_len + 1

    def __call__(self, size: int) -> Dict[str, torch.Tensor]:
        span = self.input_len + self.output_len
        starts = self.rng.integers(0, len(self.data) - span + 1, size)
        x = np.stack([self.data[s:s + self.input_len] for s in starts])
        y = np.stack([self.data[s + self.input_len:s + span] for s in starts])
        ts = np.stack([self.stamps[s:s + self.input_len] for s in starts])
        ts_out = np.stack([self.stamps[s + self.input_len:s + span] for s in starts])
        return {"inputs": torch.from_numpy(x), "inputs_timestamps": torch.from_numpy(ts),
                "targets": torch.from_numpy(y), "targets_timestamps": torch.from_numpy(ts_out),
                "targets_mask": torch.ones(y.shape, dtype=torch.bool)}


def forward_kwargs(model: torch.nn.Module, batch: Dict[str, torch.Tensor], train: bool) -> dict:
    """What BasicTS's runner passes: the batch entries and `train` that `forward` names."""
    names = inspect.signature(model.forward).parameters
    kwargs = {k: v for k, v in batch.items() if k in names}
    if "train" in names:
        kwargs["train"] = train
    return kwargs


def training_step(model: torch.nn.Module, loss_fn: Callable, optimizer: torch.optim.Optimizer,
                  batch: Dict[str, torch.Tensor]) -> None:
    out = model(**forward_kwargs(model, batch, train=True))
    out = out if isinstance(out, dict) else {"prediction": out}
    names = inspect.signature(loss_fn).parameters
    loss = loss_fn(**{k: v for k, v in {**batch, **out}.items() if k in names})
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 5.0)
    optimizer.step()


def timed(fn: Callable[[], None], min_seconds: float, min_reps: int, warmup: int = 1) -> float:
    """Seconds per call of `fn` after `warmup` calls (at least `min_reps` calls and `min_seconds`)."""
    for _ in range(warmup):
        fn()
    reps, start = 0, time.perf_counter()
    while reps < min_reps or time.perf_counter() - start < min_seconds:
        fn()
        reps += 1
    return (time.perf_counter() - start) / reps


def gemm_gflops(width: int, min_seconds: float, rows: int = 4096) -> float:
    """GFLOP/s of a `[rows, D] x [D, 4D]` float32 GEMM (the shape of a ViT MLP layer) on this thread setting."""
    a, b = torch.randn(rows, width), torch.randn(width, 4 * width)
    seconds = timed(lambda: torch.mm(a, b), min_seconds=min_seconds, min_reps=5, warmup=2)
    return 2 * rows * width * 4 * width / seconds / 1e9


def frozen_blocks_gflops(model: torch.nn.Module, batch_size: int, min_seconds: float) -> Optional[Dict[str, float]]:
    """Achieved GFLOP/s of the frozen blocks of an ST-VFM model: forward + input gradient, timed alone."""
    vfm = getattr(model, "vfm", None)
    if vfm is None:
        return None
    branches = 2 if getattr(model, "flow_adapter", None) is not None else 1
    tokens = torch.randn(branches * batch_size, model.layout.num_cells, vfm.embed_dim, requires_grad=True)

    def step() -> None:
        with autocast(model.config.precision, tokens.device):  # the row's precision (a bf16 row: bf16 blocks)
            vfm(tokens).float().sum().backward()

    with FlopCounterMode(display=False) as counter:
        step()
    flops = counter.get_total_flops()
    seconds = timed(step, min_seconds=min_seconds, min_reps=3)
    return {"flops": flops, "gflops": flops / seconds / 1e9}


def tokens_per_window(model: torch.nn.Module) -> Optional[int]:
    vfm = getattr(model, "vfm", None)
    if vfm is None:
        return None
    branches = 2 if getattr(model, "flow_adapter", None) is not None else 1
    return branches * (model.layout.num_cells + vfm.num_prefix_tokens)


def measure(row: Row, dataset: Optional[str], min_seconds: float, echo: Callable[[str], None],
            overrides: Sequence[str] = ()) -> dict:
    """Every figure of one row, on `dataset` (prepared, or a synthetic set's name: generated on first use; None:
    the config's own)."""
    with busy_neighbour(row.beside_busy):
        return _measure(row, dataset, min_seconds, echo, overrides)


def _measure(row: Row, dataset: Optional[str], min_seconds: float, echo: Callable[[str], None],
             overrides: Sequence[str]) -> dict:
    torch.set_num_threads(row.threads)
    flush_denormals()  # as every run does
    torch.manual_seed(0)
    options = RunOptions(config=Path(row.config), dataset=dataset,
                         overrides=[parse_override(o) for o in list(row.overrides) + list(overrides)])
    spec = describe_run(options, logging.getLogger("speed"))
    cfg, info = spec.cfg, spec.dataset
    batches = Batches(info.folder, cfg.input_len, cfg.output_len)
    reset_peak_memory()
    start_kb = _read_status_kb("VmRSS")
    model = build_model(cfg, info)
    batch_size = cfg.batch_size
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(trainable, **{k: v for k, v in (cfg.optimizer_params or {}).items() if k != "lr"},
                                 lr=(cfg.optimizer_params or {}).get("lr", 1e-3))
    loss_fn = cfg.loss
    model.train()
    train_batch = batches(batch_size)
    with FlopCounterMode(display=False) as counter:
        training_step(model, loss_fn, optimizer, train_batch)
    flops_per_window = counter.get_total_flops() / batch_size
    governor = ThreadGovernor(row.threads, sorted(os.sched_getaffinity(0))) if row.follow_free else None
    threads_used = {row.threads}

    def train() -> None:
        if governor is not None and governor.poll() is not None:  # as the runner polls before each step
            threads_used.add(governor.threads)
        training_step(model, loss_fn, optimizer, batches(batch_size))

    train_s = timed(train, min_seconds, 3)
    model.eval()

    def infer() -> None:
        with torch.inference_mode():
            model(**forward_kwargs(model, batches(batch_size), train=False))

    infer_s = timed(infer, min_seconds / 2, 3)
    peak_kb = _read_status_kb("VmHWM")
    result = {
        "row": row, "batch_size": batch_size, "threads": row.threads_label
        + (f" (used {', '.join(map(str, sorted(threads_used)))})" if len(threads_used) > 1 else ""),
        "train_wps": batch_size / train_s, "infer_wps": batch_size / infer_s,
        "epoch_s": batches.windows_per_epoch * train_s / batch_size, "epoch_windows": batches.windows_per_epoch,
        "peak_mb": peak_kb / 1024 if peak_kb else None,
        "peak_above_start_mb": (peak_kb - start_kb) / 1024 if peak_kb and start_kb else None,
        "tokens": tokens_per_window(model), "flops_per_window": flops_per_window,
        "grid": model.layout.describe() if hasattr(model, "layout") else None,
    }
    if getattr(model, "vfm", None) is not None:
        model.train()
        blocks = frozen_blocks_gflops(model, batch_size, min_seconds / 4)
        result["gemm_gflops"] = gemm_gflops(model.vfm.embed_dim, min_seconds / 4)
        result["blocks_gflops"] = blocks["gflops"]
        result["blocks_share_of_flops"] = blocks["flops"] / (flops_per_window * batch_size)
    echo(f"{row.name}: {result['train_wps']:.1f} train windows/s, {result['infer_wps']:.1f} inference windows/s, "
         f"peak {result['peak_mb']:.0f} MB" + (f", {result['tokens']} tokens/window" if result["tokens"] else ""))
    return result


def quiet_twin(busy: dict, results: List[dict]) -> Optional[dict]:
    """The quiet row measured with the same config, overrides and thread count as the shared-machine row `busy`."""
    row = busy["row"]
    return next((r for r in results if not r["row"].beside_busy and r["row"].config == row.config
                 and r["row"].overrides == row.overrides and r["row"].threads == row.threads), None)


# ---- the report ----------------------------------------------------------------------------------

def _fmt(value: Optional[float], digits: int = 1) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def report(results: List[dict], scale: List[dict], args: argparse.Namespace, command: str) -> str:
    lines = [
        "# Speed benchmark",
        "",
        "Generated by `benchmarks/speed.py` (do not edit by hand). Command, from `benchmarks/work/`:",
        "",
        f"    {command}",
        "",
        f"- Machine: {cpu_model()}, {os.cpu_count()} logical cores, {available_cores()} available to the process; "
        f"torch {torch.__version__}, Python {platform.python_version()}.",
        f"- Threads: each row sets `torch.set_num_threads` to its own count (column Threads); \"fewer while busy\" "
        "rows follow the free cores as a run does by default (`stvfm_plugin.cpu_threads`: sampled about once a second "
        "between training steps; \"used\" lists the counts they ran with); "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, "
        f"interop threads {torch.get_num_interop_threads()}.",
        f"- Dataset: {f'`{args.dataset}`' if args.dataset else 'each config’s own'} (prepared), random training windows; each figure is timed for at least "
        f"{args.min_seconds:g} s after a warm-up step, one row after the other in this one process.",
        "- Training = forward, loss, backward, gradient clipping and an Adam step at the config's batch size. "
        "Inference = forward under `torch.inference_mode()`.",
        "- Peak memory = the process's peak resident set during the row (reset before each row; it includes "
        "Python, torch and the data), and how far it rose above the row's start.",
        "- Tokens per window = tokens through the frozen backbone (both branches, grid and class tokens). "
        "FLOPs per training window are counted by `torch.utils.flop_counter.FlopCounterMode` over one training step.",
        "- Frozen blocks: their forward and input-gradient pass on the row's token batch in the row's precision, timed "
        "alone; achieved GFLOP/s against a `[4096, D] x [D, 4D]` float32 GEMM (D = the backbone's width) timed with the "
        "same threads (a bf16 row can pass 100 %).",
        "",
        "- Train s/epoch = the training windows of one epoch of the dataset's training split "
        f"({results[0]['epoch_windows']:,} for the first row) / train windows per second: training only, as the "
        "leaderboard's cost table counts it (that table's runs share the machine with a second run).",
        "",
        "| Row | Threads | Batch | Train windows/s | Train s/epoch | Inference windows/s | Peak memory MB (rise) | "
        "Tokens/window | GFLOP per train window | Frozen blocks GFLOP/s | GEMM GFLOP/s | Blocks / GEMM |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        fraction = r["blocks_gflops"] / r["gemm_gflops"] if r.get("blocks_gflops") else None
        lines.append(
            f"| {r['row'].name} | {r['threads']} | {r['batch_size']} | {_fmt(r['train_wps'])} | {_fmt(r['epoch_s'])} | "
            f"{_fmt(r['infer_wps'])} | "
            f"{_fmt(r['peak_mb'], 0)} ({_fmt(r['peak_above_start_mb'], 0)}) | {r['tokens'] or '—'} | "
            f"{_fmt(r['flops_per_window'] / 1e9, 3)} | {_fmt(r.get('blocks_gflops'))} | {_fmt(r.get('gemm_gflops'))} | "
            f"{'—' if fraction is None else f'{100 * fraction:.0f} %'} |")
    lines += ["", "Rows, as run:", ""]
    for r in results:
        lines.append(f"- **{r['row'].name}**: `{Path(r['row'].config).name}`"
                     + (f" with {', '.join(f'`{o}`' for o in r['row'].overrides)}" if r["row"].overrides else "")
                     + (f"; token grid {r['grid']}" if r["grid"] else "")
                     + (f"; frozen blocks {100 * r['blocks_share_of_flops']:.0f} % of the step's FLOPs"
                        if r.get("blocks_share_of_flops") else ""))
    by_name = {r["row"].name: r for r in results}
    for pair in args.speedup or SPEEDUPS:
        if all(n in by_name for n in pair):
            new, old = (by_name[n] for n in pair)
            lines += ["", f"**Speed-up** of training windows per second, \"{new['row'].name}\" over "
                          f"\"{old['row'].name}\": **{new['train_wps'] / old['train_wps']:.2f}x** (inference "
                          f"{new['infer_wps'] / old['infer_wps']:.2f}x); training seconds per epoch "
                          f"{new['epoch_s']:,.1f} against {old['epoch_s']:,.1f}."]
    shared = [(r, quiet_twin(r, results)) for r in results if r["row"].beside_busy and quiet_twin(r, results)]
    if shared:
        lines += ["", "## Shared machine", "",
                  "Rows marked \"shared machine\" run beside one busy single-threaded process (`python -c \"while True: "
                  "pass\"`, started before the row's warm-up step, stopped after its last figure), each against the "
                  "quiet row of the same config, overrides and thread count. Target (issue 46): a run's default "
                  f"(threads following the free cores) trains at most {SHARED_TARGET:g}x its quiet time per epoch.", "",
                  "| Row | Threads | Quiet s/epoch | Shared s/epoch | Slowdown | Target met |",
                  "|---|---|---:|---:|---:|---|"]
        for busy, quiet in shared:
            ratio = busy["epoch_s"] / quiet["epoch_s"]
            met = ("yes" if ratio <= SHARED_TARGET else "NO") if busy["row"].follow_free else "— (count fixed)"
            lines.append(f"| {busy['row'].name} | {busy['threads']} | {_fmt(quiet['epoch_s'])} | {_fmt(busy['epoch_s'])} "
                         f"| {ratio:.2f}x | {met} |")
    if scale:
        lines += ["", f"## Cost against graph size ({scale[0]['row'].name}, batch {scale[0]['batch_size']}, "
                      f"{scale[0]['row'].threads} threads)", "",
                  "Synthetic road graphs (`SynthN...`, generated on first use), the same config run on each.", "",
                  "| Nodes N | Token grid | Tokens/window | Train windows/s | Inference windows/s | Peak memory MB (rise) |",
                  "|---:|---|---:|---:|---:|---:|"]
        for r in scale:
            lines.append(f"| {r['nodes']:,} | {r['grid']} | {r['tokens']} | {_fmt(r['train_wps'])} | "
                         f"{_fmt(r['infer_wps'])} | {_fmt(r['peak_mb'], 0)} ({_fmt(r['peak_above_start_mb'], 0)}) |")
    return "\n".join(lines) + "\n"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", help="prepared dataset of the rows (default: each config's own; LosLoop for the "
                                          "default rows, whose configs are generic)")
    parser.add_argument("--workdir", default=".", help="folder holding the datasets (default: the current one)")
    parser.add_argument("--row", action="append", default=[], metavar="NAME|CONFIG|THREADS[|k=v,...]",
                        help="a row instead of the default ones (repeatable; THREADS 'all' = every core)")
    parser.add_argument("--speedup", nargs=2, metavar=("NEW", "OLD"), action="append",
                        help="two row names whose training speed ratio the report states (repeatable; default: "
                             + "; ".join(f"{new!r} over {old!r}" for new, old in SPEEDUPS) + ")")
    parser.add_argument("--min-seconds", type=float, default=10.0, help="minimum timing per figure (default 10)")
    parser.add_argument("--scale-row", default="ST-VFM committed config",
                        help="row measured on synthetic graphs ('' = no cost-vs-N table)")
    parser.add_argument("--scale-nodes", type=int, nargs="*", default=[207, 1000, 8600])
    parser.add_argument("--scale-days", type=int, default=3, help="days of 5-minute steps of each synthetic graph")
    parser.add_argument("--scale-batch", type=int, default=8, help="batch size on the synthetic graphs")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "speed.md"))
    return parser


def run(args: argparse.Namespace, argv: Optional[Sequence[str]]) -> None:
    command = "python ../speed.py " + " ".join(argv if argv is not None else sys.argv[1:])
    os.chdir(args.workdir)  # BasicTS reads datasets relative to the working directory
    rows = [Row.parse(r) for r in args.row]
    dataset = args.dataset or (None if rows else "LosLoop")
    rows = rows or default_rows()
    args.dataset = dataset  # for the report
    echo = lambda s: print(f"[speed] {s}", file=sys.stderr, flush=True)  # noqa: E731
    results = [measure(row, dataset, args.min_seconds, echo) for row in rows]
    scale = []
    scale_row = next((r for r in rows if r.name == args.scale_row), None)
    for nodes in (args.scale_nodes if scale_row else []):
        name = synthetic_name(SynthOptions(num_nodes=nodes, num_steps=288 * args.scale_days))
        result = measure(scale_row, name, args.min_seconds / 2, echo, overrides=[f"batch_size={args.scale_batch}"])
        scale.append({**result, "nodes": nodes})
    text = report(results, scale, args, command)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text, encoding="utf-8")
    echo(f"wrote {args.out}")


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    return exit_status(lambda: run(args, argv), "interrupted: nothing written.")


if __name__ == "__main__":
    raise SystemExit(main())
