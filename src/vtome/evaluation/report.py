"""The paper's Table 1 from evaluation results: model x reduction rows, dataset columns, a speedup column.

    results = load_results(["runs/"])        # metrics.json files, or directories searched for them
    rows = table_rows(results)               # list of dicts, the columns of COLUMNS
    print(to_markdown(rows)); to_csv(rows, "table1.csv")

Rows: per model name (metrics "name", e.g. ViViT) its baseline (r = 0, reduction "-") then one row per
(r, schedule, reduction), reductions in the paper's order. Cells: top-1 in percent (EK-100: action, verb,
noun); "*" marks a run that did not evaluate every clip of its split. Speedup: the row's measured model
throughput (clips/s) over the baseline's on the same dataset, averaged over the datasets that have both.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from vtome.evaluation.results import METRICS

COLUMNS = ["Model", "r", "Reduction", "K400", "SSv2", "EK-100 Action", "EK-100 Verb", "EK-100 Noun", "Folder",
           "Speedup (x)"]
CELLS = {  # column -> (dataset, metrics key)
    "K400": ("k400", "top1"),
    "SSv2": ("ssv2", "top1"),
    "EK-100 Action": ("epic", "action_top1"),
    "EK-100 Verb": ("epic", "verb_top1"),
    "EK-100 Noun": ("epic", "noun_top1"),
    "Folder": ("folder", "top1"),
}
REDUCTIONS = {"random_drop": "random drop", "drop": "drop", "random_merge": "random merge", "merge": "merge",
              "hybrid": "hybrid"}
MODEL_ORDER = ["TimeSformer", "Motionformer", "VideoMAE", "ViViT"]
SCHEDULE_MARK = {"constant": "", "decreasing": " ↓", "increasing": " ↑"}
DIVIDED = {"timesformer", "motionformer"}  # r is per frame: shown as r x frames (Motionformer: token slots)


def load_results(paths: list[str | Path]) -> list[dict]:
    """metrics.json contents of every path (a metrics file, or a directory searched recursively). Raises
    FileNotFoundError for a path that does not exist, ValueError for a file that is not an eval run's metrics."""
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found.extend(sorted(path.rglob(METRICS)))
        elif path.is_file():
            found.append(path)
        else:
            raise FileNotFoundError(f"no results at {path}")
    results = []
    for path in found:
        try:
            metrics = json.loads(path.read_text())
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ValueError(f"{path} is not a metrics.json of vtome eval (not JSON: {err})") from err
        if not isinstance(metrics, dict) or not {"r", "dataset"} <= metrics.keys():
            raise ValueError(f"{path} is not a metrics.json of vtome eval (no r and dataset)")
        metrics.setdefault("_path", str(path))
        results.append(metrics)
    return results


def _is_baseline(m: dict) -> bool:
    return not m.get("patched") and not m.get("r")


def _r_label(m: dict) -> str:
    r = m.get("r") or 0
    if _is_baseline(m):
        return "0"
    text = f"{100 * r:g}%" if isinstance(r, float) and r < 1 else str(r)
    frames = m.get("merge_frames") or m.get("num_frames")
    if m.get("model_type") in DIVIDED and frames and not (isinstance(r, float) and r < 1):
        text = f"{text}×{frames}"
    return text


def _reduction(m: dict) -> str:
    if _is_baseline(m):
        return "-"
    label = REDUCTIONS.get(m.get("mode", "merge"), m.get("mode", ""))
    if m.get("mode") == "hybrid" and m.get("threshold") is not None:
        label += f" (t={m['threshold']:g})"
    return label


def _row_key(m: dict) -> tuple:
    name = m.get("name") or m.get("model_type", "?")
    if _is_baseline(m):
        return (name, "", 0, "", None)
    return (name, m.get("schedule", "constant"), m.get("r"), m.get("mode", "merge"), m.get("threshold"))


def _sort_key(key: tuple) -> tuple:
    name, schedule, r, mode, threshold = key
    model = MODEL_ORDER.index(name) if name in MODEL_ORDER else len(MODEL_ORDER)
    modes = list(REDUCTIONS)
    return (model, name, schedule != "", list(SCHEDULE_MARK).index(schedule) if schedule in SCHEDULE_MARK else 9,
            float(r or 0), modes.index(mode) if mode in modes else len(modes), threshold or 0.0)


def _throughput(m: dict) -> float | None:
    return (m.get("throughput") or {}).get("clips_per_s")


def table_rows(results: list[dict]) -> list[dict]:
    """One dict per table row with the keys of COLUMNS (values as strings; "" for missing cells)."""
    cells: dict[tuple, dict[str, dict]] = {}  # row key -> dataset -> metrics (the last result wins)
    for m in results:
        cells.setdefault(_row_key(m), {})[m.get("dataset", "")] = m
    baselines = {(k[0], d): m for k, by in cells.items() if k[1] == "" for d, m in by.items()}
    rows = []
    for key in sorted(cells, key=_sort_key):
        by_dataset = cells[key]
        first = next(iter(by_dataset.values()))
        row = {"Model": key[0] + SCHEDULE_MARK.get(key[1], f" ({key[1]})" if key[1] else ""),
               "r": _r_label(first), "Reduction": _reduction(first)}
        for column, (dataset, metric) in CELLS.items():
            m = by_dataset.get(dataset)
            if m is None or metric not in m:
                row[column] = ""
            else:
                row[column] = f"{m[metric]:.2f}" + ("" if m.get("complete") else "*")
        ratios = []
        for dataset, m in by_dataset.items():
            base = baselines.get((key[0], dataset))
            if base is not None and _throughput(m) and _throughput(base):
                ratios.append(_throughput(m) / _throughput(base))
        row["Speedup (x)"] = f"{sum(ratios) / len(ratios):.2f}" if ratios else ""
        rows.append(row)
    return rows


def _used_columns(rows: list[dict]) -> list[str]:
    return [c for c in COLUMNS if c in ("Model", "r", "Reduction") or any(row.get(c) for row in rows)]


def to_markdown(rows: list[dict]) -> str:
    """A markdown table; the model name is written once per group, as in the paper."""
    columns = _used_columns(rows)
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join(" --- " for _ in columns) + "|"]
    previous = None
    for row in rows:
        group = row["Model"]
        values = [("" if c == "Model" and group == previous else row[c]) for c in columns]
        previous = group
        lines.append("| " + " | ".join(values) + " |")
    if any("*" in row.get(c, "") for row in rows for c in CELLS):
        lines.append("")
        lines.append("\\* incomplete run: not every clip of the split was evaluated.")
    return "\n".join(lines) + "\n"


def to_csv(rows: list[dict], path: str | Path) -> None:
    """The rows as CSV, every column of the markdown table, the model on every row."""
    columns = _used_columns(rows)
    with Path(path).open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
