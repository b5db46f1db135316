"""Few-shot rows of a report: a model trained on the most recent share of the training split (`MODEL:train_fraction=F`,
`--train-fraction`), against the same model on all of it.

A row `STVFM:pretrained=False,train_fraction=0.1` is the row `STVFM:pretrained=False` at 10 %; the report puts each
such row in a table and a figure of test MAE against the fraction, whose right end (100 %) is the row without the
fraction. Few-shot rows are never ranked and are not ablations of their model.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional

from .rows import ModelRow, epoch_limit_caveat, seed_spread
from .runs import RUN_OPTIONS, _row_items

#: the row key of the few-shot setting
FRACTION_KEY = "train_fraction"
assert FRACTION_KEY in RUN_OPTIONS


def fraction_of(label: str) -> Optional[float]:
    """The training share a row label names (`STID:train_fraction=0.1` -> 0.1), or None."""
    for item in _row_items(label, label.partition(":")[2]):
        key, _, value = item.partition("=")
        if key == FRACTION_KEY:
            return float(value)
    return None


def at_full_data(label: str) -> str:
    """The row a few-shot row is a share of (`STVFM:pretrained=False,train_fraction=0.1` -> `STVFM:pretrained=False`)."""
    base, _, spec = label.partition(":")
    kept = [item for item in _row_items(label, spec) if item.partition("=")[0] != FRACTION_KEY]
    return base + (":" + ",".join(kept) if kept else "")


def few_shot_groups(rows: List[ModelRow]) -> Dict[str, Dict[float, ModelRow]]:
    """full-data label -> {fraction: row}, 1.0 being the full-data row where the report has it; only labels that have
    a few-shot row, in the report's order."""
    by_name = {r.model: r for r in rows}
    groups: Dict[str, Dict[float, ModelRow]] = {}
    for row in rows:
        fraction = fraction_of(row.model)
        if fraction is not None:
            groups.setdefault(at_full_data(row.model), {})[fraction] = row
    for label, group in groups.items():
        if label in by_name:
            group.setdefault(1.0, by_name[label])
    return groups


def _cell(row: ModelRow) -> str:
    mean, std = row.mean("overall", "MAE"), row.std("overall", "MAE")
    if mean is None:
        return "—"
    windows = sorted({r.info.get("train_windows") for r in row.finished if r.info.get("train_windows")})
    limited = row.at_epoch_limit()
    return (f"{mean:.3f}" + (f" ± {std:.3f}" if std is not None else "") + f" ({len(row.finished)}"
            + (f", {limited} at the epoch limit" if limited else "") + ")"
            + (f", {windows[0]:,} windows" if len(windows) == 1 else ""))


def few_shot_table(rows: List[ModelRow]) -> List[str]:
    """The report's "Few-shot" section: test MAE (mean ± std over the finished seeds, their count, the training
    windows) of each row at each fraction; nothing when the report has no few-shot row."""
    groups = few_shot_groups(rows)
    if not groups:
        return []
    fractions = sorted({f for group in groups.values() for f in group})
    lines = ["", "## Few-shot: trained on the most recent share of the training split", "",
             "Each row trained on the most recent share of the training split (the part next to validation; the "
             "scaler fitted on it; validation and test unchanged), under the same budget and seeds; 100 % is the row "
             "trained on all of it. Test MAE, mean ± std (finished seeds; those the epoch limit ended, not early "
             "stopping), training windows per epoch. Figure: `few_shot.png`.", "",
             "| Row | " + " | ".join(f"{100 * f:g} %" for f in fractions) + " |",
             "|---|" + "---:|" * len(fractions)]
    for label, group in groups.items():
        lines.append(f"| {label} | " + " | ".join(_cell(group[f]) if f in group else "—" for f in fractions) + " |")
    answers = [line for f in fractions for line in [_answers(groups, f)] if line]
    if answers:
        lines += ["", "At each share, in plain words (a difference counts when the means differ by more than the "
                      "larger std of the two rows; fewer than two finished seeds: undecided):", ""] + answers
    return lines


def _beats(row: Optional[ModelRow], other: Optional[ModelRow]) -> Optional[bool]:
    """`row` has the lower mean test MAE by more than the seeds' spread: True; not: False; undecided: None."""
    if row is None or other is None or row.mean("overall", "MAE") is None or other.mean("overall", "MAE") is None:
        return None
    spread = seed_spread(row, other)
    return None if spread is None else other.mean("overall", "MAE") - row.mean("overall", "MAE") > spread


def _answers(groups: Dict[str, Dict[float, ModelRow]], fraction: float) -> str:
    """Does the pretrained backbone beat a random one and none, and does ST-VFM beat STID, at `fraction`?"""
    at = {label: group.get(fraction) for label, group in groups.items()}
    stvfm, parts = at.get("STVFM"), []
    if stvfm is None:
        return ""
    word = {True: "yes", False: "no", None: "undecided"}
    controls = [(name, at.get(label)) for name, label in (("random", "STVFM:pretrained=False"),
                                                          ("none", "STVFM:vfm_layers=0"))]
    if any(row is not None for _, row in controls):
        parts.append("the pretrained backbone beats " + " and ".join(
            f"{name} {word[_beats(stvfm, row)]}" for name, row in controls if row is not None))
    if at.get("STID") is not None:
        parts.append(f"ST-VFM beats STID: {word[_beats(stvfm, at['STID'])]}")
    caveats = []  # of each decided comparison whose side behind the epoch limit ended (`epoch_limit_caveat`)
    for other in [row for _, row in controls] + [at.get("STID")]:
        if _beats(stvfm, other) is not None:
            behind = max((stvfm, other), key=lambda r: r.mean("overall", "MAE"))
            caveats += [c for c in [epoch_limit_caveat(behind)] if c and c not in caveats]
    return f"- {100 * fraction:g} %: " + "; ".join(parts) + "." + "".join(caveats) if parts else ""


def few_shot_figure(rows: List[ModelRow], dataset: str, folder: Path) -> List[Path]:
    """`few_shot.png`: test MAE against the training share, one line per row (none without few-shot rows)."""
    groups = few_shot_groups(rows)
    if not groups:
        return []
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, group in groups.items():
        points = [(f, group[f]) for f in sorted(group) if group[f].mean("overall", "MAE") is not None]
        if points:
            ax.errorbar([100 * f for f, _ in points], [r.mean("overall", "MAE") for _, r in points],
                        yerr=[r.std("overall", "MAE") or 0 for _, r in points], marker="o", capsize=3, label=label,
                        linewidth=2.5 if label == "STVFM" else 1.2)
    ax.set_xscale("log")
    ax.set(xlabel="share of the training split (%, log scale)", ylabel="test MAE",
           title=f"{dataset}: test MAE against the training data")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = folder / "few_shot.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]
