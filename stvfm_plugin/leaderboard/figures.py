"""The report's figures: test MAE per horizon, accuracy against training time, forecasts against the truth."""
from __future__ import annotations

from pathlib import Path
from typing import List

from .rows import HORIZONS, ModelRow


def figures(rows: List[ModelRow], dataset: str, folder: Path) -> List[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = [r for r in rows if r.finished]
    # one colour and marker per model, the same in both figures (the default cycle repeats after 10)
    colour = {row.model: plt.get_cmap("tab20")(2 * i % 20 + i // 10) for i, row in enumerate(done)}
    marker = {row.model: "osD^vP*Xhp<>"[i % 12] for i, row in enumerate(done)}
    paths = []
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for row in done:
        ax.errorbar(HORIZONS, [row.mean(f"horizon_{h}", "MAE") for h in HORIZONS],
                    yerr=[row.std(f"horizon_{h}", "MAE") or 0 for h in HORIZONS], marker=marker[row.model],
                    color=colour[row.model], capsize=3, label=row.model,
                    linewidth=2.5 if row.model == "STVFM" else 1.2)
    ax.set(xlabel="horizon (steps ahead)", ylabel="test MAE", title=f"{dataset}: test MAE per horizon", xticks=HORIZONS)
    ax.grid(alpha=0.3)
    if done:  # (no finished row yet: an empty figure, no legend)
        ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    paths.append(folder / "horizon_mae.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for row in done:
        seconds = row.train_seconds()
        if seconds:
            ax.scatter(seconds, row.mean("overall", "MAE"), s=60 if row.model == "STVFM" else 30,
                       color=colour[row.model], marker=marker[row.model])
            ax.annotate(row.model, (seconds, row.mean("overall", "MAE")), fontsize=8, xytext=(4, 3),
                        textcoords="offset points")
    ax.set_xscale("log")
    ax.set(xlabel="training time (s, log scale)", ylabel="test MAE", title=f"{dataset}: accuracy vs training time")
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    paths.append(folder / "accuracy_vs_time.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)
    return paths


def forecast_figure(rows: List[ModelRow], dataset: str, folder: Path) -> List[Path]:
    """`forecasts.png`: truth against ST-VFM and the best-ranked other model, a few sensors at a rush hour."""
    stvfm = next((r for r in rows if r.model == "STVFM" and r.runs and r.runs[0].forecast), None)
    best = next((r for r in sorted(rows, key=lambda r: r.rank or 1e9)
                 if r.rank and r.model != "STVFM" and r.runs and r.runs[0].forecast), None)
    shown = [r for r in (stvfm, best) if r is not None]
    if not shown:
        return []
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sample = shown[0].runs[0].forecast
    fig, axes = plt.subplots(len(sample["sensors"]), 1, figsize=(8, 2.4 * len(sample["sensors"])), sharex=True,
                             squeeze=False)
    x = list(range(len(sample["times"])))
    for k, (ax, sensor) in enumerate(zip(axes[:, 0], sample["sensors"])):
        ax.plot(x, sample["truth"][k], color="black", linewidth=1.8, label="truth")
        for row, colour in zip(shown, ("tab:blue", "tab:orange")):
            forecast = row.runs[0].forecast
            if sensor in forecast["sensors"]:
                ax.plot(x, forecast["prediction"][forecast["sensors"].index(sensor)], color=colour, linewidth=1.2,
                        label=f"{row.model} (seed {row.runs[0].seed})")
        ax.set_ylabel(f"sensor {sensor}")
        ax.grid(alpha=0.3)
    ticks = x[::max(1, len(x) // 6)]
    axes[-1, 0].set_xticks(ticks, [str(sample["times"][i])[-5:] if isinstance(sample["times"][i], str)
                                   else str(sample["times"][i]) for i in ticks])
    axes[0, 0].legend(fontsize=8, ncol=3, loc="upper left")
    axes[0, 0].set_title(f"{dataset}: test forecasts {sample['horizon']} steps ahead"
                         + (f", {str(sample['times'][0])[:10]}" if isinstance(sample["times"][0], str) else ""))
    fig.tight_layout()
    path = folder / "forecasts.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]
