"""Accuracy and speedup against r (paper Fig. 3) from evaluation and sweep results.

Inputs: eval metrics.json files (or directories holding them: model, r, schedule, mode, top1, throughput) and
sweep/bench CSV files (model, schedule, r, speedup; an accuracy column is used when present). Points with the
same (model, schedule, mode, r) are combined. The speedup of an eval result without one is its throughput over
the r = 0 result of the same model and dataset.

r is drawn as the percentage of the initial tokens merged per layer (a fractional r directly; a count over the
model's tokens, from a "tokens" column or the model preset), as in the paper.
"""

from __future__ import annotations

import csv
import functools
import json
from dataclasses import dataclass
from pathlib import Path

from vtome.vis.figure import save_figure

LINESTYLES = {"constant": "-", "decreasing": (0, (2, 1)), "increasing": (0, (5, 5))}  # paper: tight / loose


@dataclass
class Point:
    model: str
    schedule: str
    mode: str
    r: float
    accuracy: float | None = None
    speedup: float | None = None
    percent: float | None = None  # r as % of the initial tokens, per layer
    ideal: bool = False  # the speedup is the FLOP-ideal one (a sweep's flop_speedup), not measured


def _number(value) -> float | int | None:
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        return value
    number = float(value)
    return int(number) if number.is_integer() and "." not in str(value) else number


def _tokens(value) -> int | None:
    """A tokens column: a number, or a list (JSON or as written by csv) whose first value is the input count."""
    if value in (None, ""):
        return None
    if isinstance(value, list):
        return int(value[0])
    text = str(value).strip()
    return int(json.loads(text)[0]) if text.startswith("[") else int(float(text))


@functools.cache
def preset_tokens(model: str) -> int | None:
    """Mergeable input tokens of a model preset (per clip, or per frame for divided models); None if unknown."""
    import torch

    from vtome.models import PRESETS
    from vtome.vis.layout import token_layout

    if model not in PRESETS:
        return None
    with torch.device("meta"):  # the architecture is enough: no weights
        layout = token_layout(PRESETS[model]())
    return layout.num_tokens - int(layout.class_token)


def percent(r: float, tokens: int | None, model: str) -> float | None:
    if r == 0:
        return 0.0
    if isinstance(r, float) and r < 1:
        return 100.0 * r
    tokens = tokens or preset_tokens(model)
    return 100.0 * r / tokens if tokens else None


SPEEDUPS = ("speedup", "flop_speedup")  # CSV columns: measured, FLOP-ideal


def read_csv(path: str | Path, metric: str = "top1", speedup: str = "speedup") -> list[Point]:
    """Rows of a sweep/bench CSV with at least model and r; speedup: the column to use (e.g. flop_speedup).
    Raises ValueError for a file that is not such a CSV."""
    points = []
    with Path(path).open(newline="") as handle:
        reader = csv.DictReader(handle)
        if not {"model", "r"} <= set(reader.fieldnames or []):
            raise ValueError(f"{path} is not a sweep or bench CSV (it needs the columns model and r)")
        for row in reader:
            r = _number(row.get("r")) or 0
            model = row.get("model", "")
            points.append(Point(model, row.get("schedule") or "constant", row.get("mode") or "merge", r,
                                _number(row.get(metric)), _number(row.get(speedup)),
                                percent(r, _tokens(row.get("tokens")), model), ideal=speedup == "flop_speedup"))
    return points


def read_metrics(results: list[dict], metric: str = "top1") -> list[Point]:
    """Eval metrics.json contents -> points; speedup from throughput against the r = 0 run when not given."""

    def clips_per_s(m: dict) -> float | None:
        return (m.get("throughput") or {}).get("clips_per_s")

    base = {(m.get("model"), m.get("dataset")): clips_per_s(m) for m in results if not m.get("r")}
    points = []
    for m in results:
        r = _number(m.get("r")) or 0
        speedup = m.get("speedup")
        reference, own = base.get((m.get("model"), m.get("dataset"))), clips_per_s(m)
        if speedup is None and reference and own:
            speedup = own / reference
        model = m.get("name") or m.get("model", "")
        points.append(Point(model, m.get("schedule") or "constant", m.get("mode") or "merge", r, m.get(metric),
                            speedup, percent(r, _tokens(m.get("tokens")), m.get("model", ""))))
    return points


def load_points(paths: list[str | Path], metric: str = "top1", speedup: str = "speedup") -> list[Point]:
    """Points from CSV files and metrics.json files / directories, combined per (model, schedule, mode, r).
    speedup: the CSV column of the speedup ("speedup" measured, "flop_speedup" ideal)."""
    from vtome.evaluation.report import load_results

    csvs = [p for p in map(Path, paths) if p.suffix == ".csv"]
    others = [p for p in map(Path, paths) if p.suffix != ".csv"]
    points = [p for path in csvs for p in read_csv(path, metric, speedup)]
    if others:
        points += read_metrics(load_results(others), metric)
    combined: dict[tuple, Point] = {}
    for p in points:
        key = (p.model, p.schedule, p.mode, p.r) if p.r else (p.model, 0)  # r = 0: one baseline per model
        if key not in combined:
            combined[key] = p
            continue
        kept = combined[key]
        kept.accuracy = kept.accuracy if kept.accuracy is not None else p.accuracy
        kept.speedup = kept.speedup if kept.speedup is not None else p.speedup
        kept.percent = kept.percent if kept.percent is not None else p.percent
        kept.ideal = kept.ideal or (p.ideal and p.speedup is not None)
    return list(combined.values())


def lines(points: list[Point]) -> dict[tuple[str, str, str], list[Point]]:
    """Points per (model, schedule, mode), sorted by r; the model's r = 0 point starts every line of it."""
    out: dict[tuple[str, str, str], list[Point]] = {}
    for p in points:
        if p.r:
            out.setdefault((p.model, p.schedule, p.mode), []).append(p)
    for p in points:
        if not p.r:
            for key in [k for k in out if k[0] == p.model] or [(p.model, p.schedule, p.mode)]:
                if all(q.r for q in out.get(key, [])):
                    out.setdefault(key, []).append(p)
    return {k: sorted(v, key=lambda p: p.r) for k, v in out.items()}


def plot_curves(points: list[Point], path: str | Path, title: str | None = None, metric: str = "top1") -> Path:
    """Accuracy vs r, speedup vs r and accuracy vs speedup, the panels the data allows, in one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_line = lines(points)
    use_percent = all(p.percent is not None for p in points)
    x_of = (lambda p: p.percent) if use_percent else (lambda p: p.r)
    x_label = "tokens merged per layer (% of the input tokens)" if use_percent else "r (tokens merged per layer)"
    panels = []
    if any(p.accuracy is not None for p in points):
        panels.append((x_of, lambda p: p.accuracy, x_label, metric))
    if any(p.speedup is not None for p in points):
        panels.append((x_of, lambda p: p.speedup, x_label, "speedup (x)"))
    if any(p.accuracy is not None and p.speedup is not None for p in points):
        panels.append((lambda p: p.speedup, lambda p: p.accuracy, "speedup (x)", metric))
    if not panels:
        raise ValueError("no accuracy and no speedup in these results: nothing to plot")
    models = sorted({k[0] for k in by_line})
    modes = {k[2] for k in by_line}
    colours = {m: f"C{i % 10}" for i, m in enumerate(models)}
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False)
    for ax, (fx, fy, xl, yl) in zip(axes[0], panels, strict=True):
        for (model, schedule, mode), pts in by_line.items():
            pts = [p for p in pts if fx(p) is not None and fy(p) is not None]
            if not pts:
                continue
            label = f"{model} {schedule}" + (f" {mode}" if len(modes) > 1 else "")
            label += " (FLOP-ideal speedup)" if any(p.ideal for p in pts) else ""
            ax.plot([fx(p) for p in pts], [fy(p) for p in pts], marker="o", markersize=3, color=colours[model],
                    linestyle=LINESTYLES.get(schedule, "-."), label=label)
        ax.set_xlabel(xl)
        ax.set_ylabel(yl)
        ax.grid(alpha=0.3)
    legend: dict[str, object] = {}  # every line once, also those absent from the first panel (no accuracy)
    for ax in axes[0]:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            legend.setdefault(label, handle)
    axes[0][0].legend(list(legend.values()), list(legend), fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    return save_figure(fig, path)
