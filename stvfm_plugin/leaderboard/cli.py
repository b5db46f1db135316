"""Command line: `python -m stvfm_plugin.leaderboard run|tune|report|costs|choose|relabel`."""
from __future__ import annotations

import argparse
import sys
from contextlib import nullcontext
from dataclasses import asdict
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from ..errors import UserError, exit_status
from ..protocols import HISTORIES
from ..references import REFERENCES, applicable_references
from ..records import Outcome
from .runs import MODELS, Budget, config_file, dataset_meta, exclusive_use, run_leaderboard, split_variant

EPILOG = """examples:
  python -m stvfm_plugin.leaderboard run --dataset LosLoop --models STVFM STID GWNet --seeds 1 2 3
  python -m stvfm_plugin.leaderboard run --dataset LosLoop --budget equal-epochs --epochs 3
  python -m stvfm_plugin.leaderboard run --dataset LosLoop --set GPT4TS:model_config.backbone=all-minilm-l6-v2
  python -m stvfm_plugin.leaderboard report --dataset LosLoop
  python -m stvfm_plugin.leaderboard tune --dataset LosLoop --models STVFM STVFM:patch_size=1 --seeds 1 2
  python -m stvfm_plugin.leaderboard costs benchmarks/results/LosLoop benchmarks/results/SZTaxi --write benchmarks/README.md
  python -m stvfm_plugin.leaderboard choose benchmarks/results/tune/LosLoop benchmarks/results/tune/SZTaxi
  python -m stvfm_plugin.leaderboard relabel --report-dir benchmarks/results/LosLoop --model STVFM \
      --as vfm_layers=2 --out leaderboard/LosLoop   # after baselines_cfg/STVFM.py changed (here: from 2 blocks)

Each model trains in its own process; a failure is recorded (and reported) and the next model goes on. The report
(or the tuning table) is rewritten as each run ends, so a call cut short keeps every run that ended in it.
Running the same command again skips finished models, resumes interrupted ones and retries failed ones;
runs the report folder's summaries hold as ended are skipped too, and kept in the report."""


def _overrides(items: List[str], models: List[str]) -> Dict[str, List[str]]:
    found: Dict[str, List[str]] = {}
    for item in items:
        model, sep, setting = item.partition(":")
        if not sep or "=" not in setting:
            raise UserError(f"--set {item!r}: write MODEL:KEY=VALUE (e.g. STVFM:model_config.vfm_layers=2) or "
                            "all:KEY=VALUE.")
        targets = models if model == "all" else [model]
        for target in targets:
            if target not in models and target not in {split_variant(m)[0] for m in models}:
                raise UserError(f"--set {item!r}: {target} is not among --models ({', '.join(models)}) nor the model "
                                "of one of their ablation rows.")
            found.setdefault(target, []).append(setting)
    return found


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m stvfm_plugin.leaderboard", epilog=EPILOG,
                                     description="Train every model under one protocol and report them side by side.",
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="train and test the models not finished yet, then write the report")
    tune = sub.add_parser("tune", help="train candidate rows on validation only (the test split is never evaluated) "
                                       "and rank them by best validation MAE; run the chosen one with `run`")
    for p in (run, tune):
        p.add_argument("--dataset", required=True, help="dataset name (configs are <Model>_<dataset>.py)")
        p.add_argument("--models", nargs="+", default=None, required=p is tune,
                       help=f"models (default: {' '.join(MODELS)} and the naive references the data allow: "
                            f"{', '.join(REFERENCES)})" if p is run else
                       "candidate rows, e.g. STVFM STVFM:patch_size=1 STVFM:optimizer_params.lr=5e-4")
        p.add_argument("--budget", choices=["convergence", "equal-epochs"], default="convergence",
                       help="convergence (default): early stopping on validation MAE, at most --epochs, a "
                            "--max-minutes cap per run; equal-epochs: every model trains exactly --epochs epochs")
        p.add_argument("--epochs", type=int, help="maximum epochs (convergence, default 100) or the epochs "
                                                  "(equal-epochs, default 10)")
        p.add_argument("--patience", type=int, default=10, help="convergence budget: early stopping after N epochs "
                                                                "without a better validation MAE (default 10)")
        p.add_argument("--max-minutes", type=_minutes, default=120.0,
                       help="convergence budget: cap on each run's training minutes; a run stopped by it is marked as "
                            "not converged (default 120; none: no cap, a budget of epochs and patience alone, the same "
                            "on every machine)")
        p.add_argument("--seeds", nargs="+", type=int, default=[1], help="seeds (default: 1)")
        p.add_argument("--skip-seeds-after-cap", action="store_true",
                       help="convergence budget: once a seed of a model is stopped by the time cap (here or in the "
                            "report's summaries), do not train its other seeds: each would cost the full cap and "
                            "could not enter the means and ranks; the report lists them as skipped")
        p.add_argument("--set", action="append", default=[], metavar="MODEL:KEY=VALUE",
                       help="config override for one model (or all:KEY=VALUE), recorded in the report")
        p.add_argument("--history", choices=HISTORIES, default="recent",
                       help="how much history every row reads, the naive references' windows too: recent (each "
                            "config's input_len, default), week (one week of steps), week-residual (a week, every "
                            "model forecasting the residual of the copy of one week earlier) or weeks-residual (the "
                            "residual of the median of the copies one to three weeks earlier; models read the last week)")
        p.add_argument("--threads", type=int, metavar="N",
                       help="torch CPU threads of each run (default: $OMP_NUM_THREADS, else every core)")
        p.add_argument("--config-dir", default="baselines_cfg", help="folder of the configs (default baselines_cfg)")
        p.add_argument("-g", "--gpus", default="cpu", help="'cpu' (default) or a GPU index")
    run.add_argument("--leave-out", action="append", default=[], metavar="MODEL=REASON",
                     help="a model this leaderboard does not train, and why (e.g. StemGNN=\"one step takes 273 s\"): its "
                          "row stays in the report as left out, with the reason (repeatable)")
    tune.add_argument("--out", help="tuning folder (default tune/<dataset>); its table goes to <out>/tune.md")
    tune.add_argument("--report-dir", help="also keep the candidates' run summaries and tune.md here (e.g. committed): "
                                           "runs it holds as ended are not trained again, and the table covers them")
    for p in (run, sub.add_parser("report", help="build the report from finished run folders, without training")):
        p.add_argument("--out", help="leaderboard folder (default leaderboard/<dataset>)")
        p.add_argument("--report-dir", help="report folder (default <out>/report)")
        if p is not run:
            p.add_argument("--dataset", required=True, help="dataset name")
    costs = sub.add_parser("costs", help="the timing table of committed reports (from their summaries)")
    costs.add_argument("report_dirs", nargs="+", metavar="REPORT_DIR", help="report folders, one per dataset")
    costs.add_argument("--write", metavar="FILE", help="replace the generated table in FILE (between its markers) "
                                                       "instead of printing it")
    choose = sub.add_parser("choose", help="one config for every dataset: rank the candidates of tuning folders by "
                                           "their validation MAE relative to a reference, averaged over the datasets")
    choose.add_argument("tune_dirs", nargs="+", metavar="TUNE_DIR", help="tuning folders (their summaries), one per "
                                                                        "dataset, e.g. benchmarks/results/tune/LosLoop")
    choose.add_argument("--reference", default="STVFM", help="the row every ratio is taken against (default STVFM, "
                                                             "the committed config)")
    choose.add_argument("--write", metavar="FILE", help="write the table to FILE instead of printing it")
    relabel = sub.add_parser("relabel", help="after a model's config file changed: rename its rows (trained under the "
                                             "old file) to what they are under the new one")
    relabel.add_argument("--report-dir", required=True, help="report folder whose summaries hold the rows")
    relabel.add_argument("--model", required=True, help="the model whose config file changed, e.g. STVFM")
    relabel.add_argument("--as", dest="old_settings", required=True, metavar="KEY=VALUE[,KEY=VALUE]",
                         help="the old config as changes of the new one (row syntax: bare keys are model_config "
                              "fields), e.g. use_flow_branch=True,flow_loss_weight=0.5")
    relabel.add_argument("--out", help="the leaderboard folder of these runs, renamed too (where it exists)")
    relabel.add_argument("--config-dir", default="baselines_cfg", help="folder of the configs (default baselines_cfg)")
    relabel.add_argument("--dataset", help="dataset of the report (default: its settings.json's); picks "
                                           "<Model>_<dataset>.py where the config folder has one")
    return parser


#: the table a `tune` call writes into its folder
TUNE_TABLE = "tune.md"


def _run(args: argparse.Namespace) -> None:
    if args.command == "costs":
        from .tables import cost_table, replace_generated

        table = cost_table([Path(d) for d in args.report_dirs])
        if args.write:
            replace_generated(Path(args.write), table)
            print(f"wrote the cost table into {args.write}", flush=True)
        else:
            print(table)
        return
    if args.command == "choose":
        from .tables import choice_table

        table = choice_table([Path(d) for d in args.tune_dirs], args.reference)
        if args.write:
            Path(args.write).write_text(table, encoding="utf-8")
            print(f"wrote {args.write}", flush=True)
        else:
            print(table, end="")
        return
    if args.command == "relabel":
        _relabel(args)
        return
    out = Path(args.out or f"{'tune' if args.command == 'tune' else 'leaderboard'}/{args.dataset}")
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; give a folder.")
    budget = _budget(args) if args.command in ("run", "tune") else None
    if budget is not None:
        check_rows(budget)  # before any folder: a bad row would otherwise fail only inside its launched run
    with exclusive_use(out) if budget is not None else nullcontext():
        _train_and_report(args, out, budget)


def _relabel(args: argparse.Namespace) -> None:
    from ..files import read_json
    from .relabel import relabel
    from .summaries import SETTINGS

    dataset = args.dataset or read_json(Path(args.report_dir) / SETTINGS).get("budget", {}).get("dataset", "")
    config = config_file(args.config_dir, args.model, dataset)
    with exclusive_use(Path(args.out)) if args.out and Path(args.out).is_dir() else nullcontext():
        plan = relabel(Path(args.report_dir), args.model, args.old_settings, config,
                       Path(args.out) if args.out else None)
    for old, new in plan.items():
        print(f"{old} -> {new}" if old != new else f"{old} (unchanged)", flush=True)
    print(f"renamed; rebuild the report: python -m stvfm_plugin.leaderboard report --dataset {dataset} "
          f"--report-dir {args.report_dir}" + (f" --out {args.out}" if args.out else ""), flush=True)


def _train_and_report(args: argparse.Namespace, out: Path, budget: Optional[Budget]) -> None:
    """With a budget (`run`, `tune`): train what is not finished, then write the report or the tuning table; without
    (`report`): only write the report."""
    states: Dict[str, Outcome] = {}
    if budget is not None:
        from .stale import check_not_stale
        from .summaries import ended_summaries

        report_dir = args.report_dir or (out / "report" if budget.test else None)
        recorded = ended_summaries(Path(report_dir), {
            "budget": asdict(budget), "dataset_meta": dataset_meta(args.dataset)}) if report_dir else {}
        check_not_stale(budget, out, recorded, Path(report_dir) if report_dir else None)
        states = run_leaderboard(budget, out, args.gpus, echo=lambda s: print(s, flush=True), recorded=recorded,
                                 ended=lambda: _write_output_between_runs(args, out))
        running = [k for k, v in states.items() if v is Outcome.RUNNING]
        failed = [k for k, v in states.items() if v not in (Outcome.DIVERGED, Outcome.RUNNING) and not v.ended]
        diverged = [k for k, v in states.items() if v is Outcome.DIVERGED]
        skipped = sum(v is Outcome.SKIPPED for v in states.values())
        print(f"[{args.dataset}] done: {len(states) - len(failed) - len(diverged) - len(running) - skipped} finished, "
              + (f"{skipped} skipped after the time cap, " if skipped else "")
              + (f"{len(running)} still training in other processes ({', '.join(running)}), " if running else "")
              + (f"{len(diverged)} diverged ({', '.join(diverged)}), " if diverged else "") + f"{len(failed)} failed"
              + (f" ({', '.join(failed)})" if failed else ""), flush=True)
    _write_output(args, out)
    if args.command != "report" and not any(v.ended or v is Outcome.RUNNING for v in states.values()):
        raise UserError(f"every run failed ({', '.join(states)}); the {'table' if args.command == 'tune' else 'report'} "
                        f"shows each error, the logs are in {out}.")


def _write_output(args: argparse.Namespace, out: Path, brief: bool = False) -> None:
    """Write the tuning table (`tune`) or the report (`run`, `report`) from the runs as they stand; `brief`: one line
    saying so (after each run that ends), instead of the table or the files written."""
    warn = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    if args.command == "tune":
        from .tables import tune_table

        folder = Path(args.report_dir) if args.report_dir else out
        (folder / TUNE_TABLE).write_text(tune_table(out, Path(args.report_dir) if args.report_dir else None, warn),
                                         encoding="utf-8")
        written = [folder / TUNE_TABLE]
        if not brief:
            print((folder / TUNE_TABLE).read_text(), flush=True)
    else:
        from .report import write_report

        written = write_report(out, Path(args.report_dir or out / "report"), warn)
    if brief:
        print(f"[{args.dataset}] rewrote {written[0]} with the runs as they stand", flush=True)
    else:
        for path in written:
            print(f"wrote {path}", flush=True)


def _write_output_between_runs(args: argparse.Namespace, out: Path) -> None:
    """`_write_output` after a run has ended; a report that cannot be written then does not stop the training of the
    next runs (the call's end writes it again, and fails there if it still cannot)."""
    try:
        _write_output(args, out, brief=True)
    except (UserError, OSError) as e:
        print(f"warning: the {'table' if args.command == 'tune' else 'report'} could not be rewritten now ({e}); "
              "training goes on, and the call's end writes it again", file=sys.stderr, flush=True)


def check_rows(budget: Budget) -> None:
    """Refuse, before anything is written, what every launched run would refuse: an unknown dataset, a model without a
    config, an override its config does not take."""
    from ..config_tools import apply_overrides, load_config, parse_override
    from ..data.synth import synthetic_options
    from ..data.info import dataset_folder
    from ..data.layout import META_FILE
    from ..references import REFERENCES

    if synthetic_options(budget.dataset) is None and not (dataset_folder(budget.dataset) / META_FILE).is_file():
        raise UserError(f"Dataset {budget.dataset!r} is not prepared ({dataset_folder(budget.dataset)} holds no "
                        f"{META_FILE}): prepare it first (python -m stvfm_plugin.data prepare ...).")
    for row in budget.models:
        base, changes = split_variant(row)
        if base in REFERENCES:
            if changes:
                raise UserError(f"{row}: a naive reference has no config to change; its only row setting is "
                                "train_fraction (e.g. HistoricalMean:train_fraction=0.1).")
            continue
        if not budget.config_path(row).is_file():
            raise UserError(f"No model {base!r}: no config {budget.config_path(row)} (known: {', '.join(MODELS)}, "
                            f"and the naive references {', '.join(REFERENCES)}).")
        overrides = (budget.overrides.get(base, []) if base != row else []) + budget.overrides.get(row, []) + changes
        try:
            apply_overrides(load_config(budget.config_path(row)), [parse_override(item) for item in overrides])
        except UserError as e:
            raise UserError(f"{row}: {e}") from None


def _budget(args: argparse.Namespace) -> Budget:
    """The budget of a `run` or `tune` call (a `tune` never tests)."""
    convergence = args.budget == "convergence"
    epochs = args.epochs if args.epochs is not None else (100 if convergence else 10)
    if epochs < 1:
        raise UserError(f"--epochs {epochs}: give at least 1.")
    if convergence and (args.patience < 1 or (args.max_minutes is not None and not args.max_minutes > 0)):
        raise UserError("--budget convergence needs --patience of at least 1 and a positive --max-minutes "
                        "(use --budget equal-epochs for a fixed number of epochs).")
    if args.skip_seeds_after_cap and not convergence:
        raise UserError("--skip-seeds-after-cap needs --budget convergence: the equal-epochs budget has no time cap.")
    if len(set(args.seeds)) < len(args.seeds) or any(not 0 <= seed < 2 ** 32 for seed in args.seeds):
        raise UserError(f"--seeds {' '.join(map(str, args.seeds))}: give distinct whole numbers from 0 to "
                        f"{2 ** 32 - 1}.")
    left_out = _left_out(getattr(args, "leave_out", []))
    both = sorted(set(args.models or []) & set(left_out))
    if both:
        raise UserError(f"{', '.join(both)}: in --models and in --leave-out; name a model in one of them.")
    for row in args.models or []:  # a left-out model's other rows (ablations, few-shot shares) are left out with it
        if split_variant(row)[0] in left_out:
            left_out[row] = left_out[split_variant(row)[0]]
    models = [m for m in (args.models or MODELS + applicable_references(args.dataset)) if m not in left_out]
    return Budget(dataset=args.dataset, models=models, seeds=list(args.seeds),
                  epochs=epochs, patience=args.patience if convergence else 0,
                  overrides=_overrides(args.set, list(args.models)), config_dir=args.config_dir,
                  threads=args.threads, max_minutes=args.max_minutes if convergence else None,
                  kind="convergence" if convergence else "equal epochs", test=args.command == "run",
                  skip_after_cap=args.skip_seeds_after_cap, history=args.history, left_out=left_out)


def _left_out(items: List[str]) -> Dict[str, str]:
    """`--leave-out StemGNN="too slow"` -> {"StemGNN": "too slow"}."""
    found = {}
    for item in items:
        model, sep, reason = item.partition("=")
        if not sep or not model.strip() or not reason.strip():
            raise UserError(f"--leave-out {item!r}: write MODEL=REASON (e.g. StemGNN=\"one training step takes 273 s "
                            "here\"): the report says why the row has no runs.")
        if model.strip() not in MODELS:
            raise UserError(f"--leave-out {item!r}: {model.strip()} is not a model (known: {', '.join(MODELS)}).")
        found[model.strip()] = reason.strip()
    return found


def _minutes(text: str) -> Optional[float]:
    """`--max-minutes 160` -> 160.0; `none` -> None (no cap)."""
    if text.strip().lower() == "none":
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give minutes, such as 160, or none") from None


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    return exit_status(lambda: _run(args),
                       "interrupted: finished models are kept; run the same command again to go on.")
