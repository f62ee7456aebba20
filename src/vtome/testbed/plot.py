"""Accuracy against measured speedup for the demo's table: one panel per dataset, one colour per model, one
marker per reduction (the Table-1 counterpart of the paper's Fig. 3b, which sweeps r instead)."""

from __future__ import annotations

from pathlib import Path

from vtome.testbed.table import DATASET_COLUMNS, MODEL_NAMES, MODEL_ORDER, SCHEDULE_MARKS, speedups
from vtome.vis.figure import save_figure

MARKERS = {"-": "*", "random drop": "v", "drop": "^", "random merge": "x", "merge": "o", "hybrid": "s"}


def plot_accuracy_speedup(results: list[dict], path: str | Path) -> Path:
    """Write the figure to path (PNG) and return the path. results: as for table.table_rows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    speed = speedups(results)
    datasets = [d for d in DATASET_COLUMNS if any(r["dataset"] == d for r in results)]
    fig, axes = plt.subplots(1, len(datasets), figsize=(5.5 * len(datasets), 4.2), squeeze=False)
    for ax, dataset in zip(axes[0], datasets, strict=True):
        for colour, model in enumerate(MODEL_ORDER):
            for r in (r for r in results if r["model"] == model and r["dataset"] == dataset):
                x = speed.get((model, dataset, r["schedule"], r["reduction"]))
                if x is None:
                    continue
                reduction = "no reduction" if r["mode"] is None else r["reduction"]
                label = f"{MODEL_NAMES[model]} {reduction}{SCHEDULE_MARKS[r['schedule']]}"
                filled = r["schedule"] == "constant"
                ax.scatter(x, r["top1"], marker=MARKERS.get(r["reduction"], "o"), s=60 if filled else 40,
                           color=f"C{colour}", facecolors=None if filled else "none", label=label)
                if not filled:
                    ax.annotate(SCHEDULE_MARKS[r["schedule"]].strip(), (x, r["top1"]), fontsize=8,
                                xytext=(4, 2), textcoords="offset points", color=f"C{colour}")
        ax.set_title(f"{DATASET_COLUMNS[dataset]} set")
        ax.set_xlabel("measured speedup (x)")
        ax.set_ylabel("top-1 accuracy (%)")
        ax.grid(alpha=0.3)
    handles, labels = axes[0][-1].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=7)
    fig.suptitle("vtome testbed: accuracy against speedup (hollow: merge with the ↓ / ↑ schedules)", fontsize=10)
    return save_figure(fig, path, bbox_inches="tight")
