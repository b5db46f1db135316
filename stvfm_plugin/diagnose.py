"""Command line: `python -m stvfm_plugin.diagnose -c CONFIG --dataset NAME --checkpoint CKPT`.

Where a trained ST-VFM's forecast comes from, on the validation split (the test split is never read):
validation MAE with each part replaced by its mean (the frozen blocks' output, the adapter tokens, the
head's token context and own-window path, the node embedding, the cross-prompt's flow -> raw prompts), the
cross-prompt gates, the statistics of the tokens entering the frozen blocks against image tokens, and
the spread of the head's three addends. Give the config, `--set` values and `--history` the run was trained
with.
"""
from __future__ import annotations

import argparse
import json
import logging
import tempfile
from pathlib import Path
from typing import List, Optional, Sequence

import torch

from .errors import UserError, exit_status
from .protocols import HISTORIES, MODEL_INPUT_LEN, RESIDUAL_LAG, RESIDUAL_LEVEL, RESIDUAL_WEEKS, residual_base
from .run_options import RunOptions


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m stvfm_plugin.diagnose", description=__doc__.split("\n\n")[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-c", "--cfg", required=True, metavar="CONFIG.py", help="the config the run was trained with")
    parser.add_argument("--dataset", metavar="NAME", help="the prepared dataset it was trained on")
    parser.add_argument("--checkpoint", required=True, metavar="CKPT", help="e.g. RUN/STVFM_best_val_MAE.pt")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="the --set values the run was trained with (repeatable)")
    parser.add_argument("--threads", type=int, metavar="N", help="torch CPU threads (default: every core)")
    parser.add_argument("--history", choices=HISTORIES, default="recent",
                        help="the --history the run was trained with (default recent)")
    parser.add_argument("--out", metavar="FILE.json", help="also write the findings as JSON")
    return parser


def validation_batches(runner) -> List[dict]:
    """The validation split as the model sees it: normalised inputs, timestamps, targets in data units, mask; and the
    whole window (`window`, and which of its readings are not missing, `window_mask`), which a `weeks-residual` run's
    base reads beyond the model's last week."""
    from basicts.utils.mask import null_val_mask

    reads = runner.cfg.get(MODEL_INPUT_LEN)
    batches = []
    for data in runner.val_data_loader:
        inputs_mask = null_val_mask(data["inputs"], runner.cfg.null_val)  # [B, T, N(, C)], before nulls become 0
        data = runner.taskflow.preprocess(runner, data)
        targets = runner.scaler.inverse_transform(data["targets"], data["targets_mask"]) if runner.cfg.rescale \
            else data["targets"]
        seen = slice(-reads, None) if reads else slice(None)  # the steps the model reads
        stamps = data.get("inputs_timestamps")
        batches.append({"inputs": data["inputs"][:, seen], "window": data["inputs"], "window_mask": inputs_mask,
                        "inputs_timestamps": None if stamps is None else stamps[:, seen],
                        "targets": targets, "targets_mask": data["targets_mask"],
                        "inputs_mask": (inputs_mask[..., 0] if inputs_mask.dim() == 4 else inputs_mask)[:, seen]})
    return batches


def scorer(runner):
    """(prediction, batch) -> absolute errors in data units, 0 where not scored (BasicTS's masked MAE sums these); a
    residual run's output is added to its copy of last week (the median of the last weeks') first, as in the run."""
    lag = runner.cfg.get(RESIDUAL_LAG)

    def score(prediction: torch.Tensor, batch: dict) -> torch.Tensor:
        if lag:
            prediction = prediction + residual_base(batch["window"], lag, prediction, runner.cfg.get(RESIDUAL_LEVEL),
                                                    runner.cfg.get(RESIDUAL_WEEKS) or 1,
                                                    runner.cfg.get(MODEL_INPUT_LEN), batch["window_mask"])
        if runner.cfg.rescale:
            prediction = runner.scaler.inverse_transform(prediction)
        return (prediction - batch["targets"]).abs() * batch["targets_mask"].to(prediction.dtype)
    return score


def diagnose(options: RunOptions, checkpoint: Path) -> dict:
    """Load the checkpoint into the config's model and measure; returns the findings."""
    from easytorch.device import set_device_type

    from .models.stvfm import STVFM
    from .models.stvfm.diagnostics import ablations, gate_values, head_parts, token_report
    from .run import describe_run, set_threads
    from .runner import PluginRunner

    if not checkpoint.is_file():
        raise UserError(f"--checkpoint {checkpoint}: no such file.")
    logger = logging.getLogger("stvfm-diagnose")
    logger.info(set_threads(options.threads))
    spec = describe_run(options, logger)
    cfg = spec.cfg
    if not (isinstance(cfg.model, type) and issubclass(cfg.model, STVFM)):
        raise UserError(f"{options.config} builds {getattr(cfg.model, '__name__', cfg.model)}, not ST-VFM: the "
                        "diagnostics read ST-VFM's parts.")
    set_device_type("cpu")
    with tempfile.TemporaryDirectory() as scratch:
        runner = PluginRunner(spec.in_folder(Path(scratch)))
        runner.init_logger(logger_name="stvfm-diagnose")
        runner.fit_scaler()  # on the training split, as for --eval
        runner._load_model(str(checkpoint))
        runner._init_validation()
        batches = validation_batches(runner)
    model = runner.bare_model.eval()
    return {"checkpoint": checkpoint.name, "dataset": cfg.dataset_name, "build_report": model.build_report,
            "ablations": ablations(model, batches, scorer(runner)), "gates": gate_values(model),
            "tokens": token_report(model, batches), "head_parts": head_parts(model, batches)}


def as_markdown(found: dict) -> str:
    """The findings as the tables of benchmarks/README.md."""
    groups = list(found["ablations"][0]["by_inputs"])
    lines = [f"### {found['dataset']}: {found['checkpoint']}", "", "| part replaced by its mean | val MAE | change |"
             + "".join(f" change, {g} |" for g in groups), "|---|---:|---:|" + "---:|" * len(groups)]
    lines += [f"| {r['ablation']} | {r['val_mae']:.4f} | {r['change']:+.4f} |"
              + "".join(f" {r['by_inputs'][g]['change']:+.4f} |" if g in r["by_inputs"] else " — |" for g in groups)
              for r in found["ablations"]]
    if groups:
        lines += ["", f"Scored readings by their node's input window: MAE of the trained model "
                  + ", ".join(f"{g} {found['ablations'][0]['by_inputs'][g]['val_mae']:.4f}" for g in groups) + "."]
    if found["gates"]:
        lines += ["", "| cross-prompt gate tanh(g) | mean | mean abs | max abs |", "|---|---:|---:|---:|"]
        lines += [f"| {k} | {v['mean']:+.4f} | {v['mean_abs']:.4f} | {v['max_abs']:.4f} |" for k, v in found["gates"].items()]
    if found["tokens"]:
        lines += ["", "| tokens entering the frozen blocks | tokens | L2 norm | entry std | mean abs dim offset | cosine "
                  "between tokens | block update ‖f(x)-x‖/‖x‖ | attention on itself | on the prefix | tokens attended |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        lines += [f"| {k} | {v['tokens']} | {v['norm']:.2f} | {v['entry_std']:.3f} | {v['dim_mean_abs']:.3f} | "
                  f"{v['cosine']:.3f} | {v['block_update']:.3f} | {v['attention']['self']:.3f} | "
                  f"{v['attention']['prefix']:.3f} | {v['attention']['effective_tokens']:.1f} |"
                  for k, v in found["tokens"].items()]
    if found["head_parts"]:
        lines += ["", "| forecast head addend | spread (std over windows and nodes) |", "|---|---:|"]
        lines += [f"| {k} | {v:.4f} |" for k, v in found["head_parts"].items()]
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)

    def action() -> None:
        from .config_tools import parse_override

        options = RunOptions(config=Path(args.cfg), dataset=args.dataset, threads=args.threads, test=False,
                             history=args.history, overrides=[parse_override(item) for item in args.set])
        found = diagnose(options, Path(args.checkpoint))
        print(as_markdown(found))
        if args.out:
            Path(args.out).write_text(json.dumps(found, indent=2))

    return exit_status(action)


if __name__ == "__main__":
    raise SystemExit(main())
