"""The demo's results in the layout of the paper's Table 1: model x reduction rows, one column per dataset.

A result is a dict from `evaluate_variants` plus "model" (vivit | videomae | timesformer | motionformer), "dataset"
(appearance | temporal), "r_count" (tokens per layer the fraction stands for; per frame for the divided models),
"frames" (the frames that merge on their own: TimeSformer's frames, Motionformer's token slots) and "flop_speedup".
"""

from __future__ import annotations

MODEL_ORDER = ("timesformer", "motionformer", "videomae", "vivit", "vjepa2")  # the paper's order: divided first
MODEL_NAMES = {"timesformer": "TimeSformer", "motionformer": "Motionformer", "videomae": "VideoMAE", "vivit": "ViViT",
               "vjepa2": "V-JEPA 2"}
DIVIDED = ("timesformer", "motionformer")  # r is per frame: shown as r x frames
DATASET_COLUMNS = {"appearance": "Appearance", "temporal": "Temporal"}
SCHEDULE_MARKS = {"constant": "", "decreasing": " ↓", "increasing": " ↑"}
# Speedup: measured (forward time of the baseline / of the row); FLOPs: the ideal speedup of the row's token counts.
COLUMNS = ["Model", "r", "Reduction", *DATASET_COLUMNS.values(), "Speedup", "FLOPs"]


def row_key(result: dict) -> tuple:
    return (result["model"], result["schedule"], result["reduction"])


def _r_label(result: dict) -> str:
    if result["mode"] is None:
        return "0"
    count = str(result["r_count"])
    return f"{count}×{result['frames']}" if result["model"] in DIVIDED else count


def speedups(results: list[dict]) -> dict[tuple, float]:
    """Measured speedup per (model, dataset, schedule, reduction): the baseline's forward seconds over the row's."""
    base = {(r["model"], r["dataset"]): r["seconds"] for r in results if r["mode"] is None}
    return {(r["model"], r["dataset"], r["schedule"], r["reduction"]): base[(r["model"], r["dataset"])] / r["seconds"]
            for r in results if r["seconds"] > 0 and (r["model"], r["dataset"]) in base}


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def table_rows(results: list[dict]) -> list[dict]:
    """One dict per row: Model, r, Reduction, a top-1 per dataset (float or None), speedups (means over datasets),
    and "best": the datasets where the row is the most accurate constant-schedule reduction of its model."""
    speed = speedups(results)
    by_row: dict[tuple, dict[str, dict]] = {}
    for result in results:
        by_row.setdefault(row_key(result), {})[result["dataset"]] = result
    best: dict[tuple[str, str], float] = {}
    for result in results:
        if result["mode"] is not None and result["schedule"] == "constant":
            key = (result["model"], result["dataset"])
            best[key] = max(best.get(key, -1.0), result["top1"])
    rows = []
    models = [m for m in MODEL_ORDER if any(k[0] == m for k in by_row)]
    for model in models:
        for key in [k for k in by_row if k[0] == model]:  # in the order evaluated: baseline first
            cells = by_row[key]
            first = next(iter(cells.values()))
            row = {"Model": MODEL_NAMES[model] + SCHEDULE_MARKS[key[1]], "r": _r_label(first), "Reduction": key[2],
                   "best": []}
            for dataset, column in DATASET_COLUMNS.items():
                result = cells.get(dataset)
                row[column] = None if result is None else result["top1"]
                if (result is not None and result["mode"] is not None and key[1] == "constant"
                        and result["top1"] == best[(model, dataset)]):
                    row["best"].append(column)
            row["Speedup"] = _mean([speed[(model, d, key[1], key[2])] for d in cells
                                        if (model, d, key[1], key[2]) in speed])
            row["FLOPs"] = _mean([c.get("flop_speedup", 1.0) for c in cells.values()])
            rows.append(row)
    return rows


def cell(row: dict, column: str, bold: tuple[str, str] = ("**", "**")) -> str:
    """The text of one cell: accuracies with two decimals (the best reduction in bold), speedups as '2.46x'."""
    value = row[column]
    if value is None:
        return ""
    if column in DATASET_COLUMNS.values():
        text = f"{value:.2f}"
        return f"{bold[0]}{text}{bold[1]}" if column in row["best"] else text
    if isinstance(value, float):
        return f"{value:.2f}x"
    return str(value)


def to_markdown(rows: list[dict], columns: list[str] = COLUMNS) -> str:
    """A markdown table; the model name is written once per group, as in the paper."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join(" --- " for _ in columns) + "|"]
    previous = None
    for row in rows:
        values = [cell(row, c) for c in columns]
        if row["Model"] == previous:
            values[0] = ""
        previous = row["Model"]
        lines.append("| " + " | ".join(values) + " |")
    return "\n".join(lines) + "\n"
