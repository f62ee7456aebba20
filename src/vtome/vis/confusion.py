"""Confusion-matrix change between two prediction files (paper Fig. 4 / 10): the merged model minus the
unmerged one, over the k most frequent classes.

Cells are the share of a true class's clips predicted as each class (rows sum to at most 1 over the k shown
classes), so that a change reads as "x% more clips of this class went there". Red: fewer predictions, blue:
more.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vtome.vis.figure import save_figure


@dataclass
class ConfusionChange:
    """classes: the k class indices shown (most frequent first); base, merged, change: (k, k), rows true class,
    columns predicted class; clips: clips compared (present and readable in both files)."""

    classes: list[int]
    base: np.ndarray
    merged: np.ndarray
    clips: int
    head: str | None
    normalized: bool = True

    @property
    def change(self) -> np.ndarray:
        return self.merged - self.base


def keys(head: str | None) -> tuple[str, str]:
    """The (label, prediction) keys of a record: "label"/"pred", or for an EPIC head "verb_label"/"verb_pred"."""
    return ("label", "pred") if head is None else (f"{head}_label", f"{head}_pred")


def frequent_classes(labels: list[int], k: int) -> list[int]:
    """The k most frequent labels, most frequent first (ties: smaller class index first)."""
    counts = Counter(labels)
    return sorted(counts, key=lambda c: (-counts[c], c))[:k]


def confusion(labels: list[int], preds: list[int], classes: list[int], normalize: bool = True) -> np.ndarray:
    """(k, k) counts of (true, predicted) pairs within `classes`; normalize: divide each row by all clips of its
    true class (predictions outside `classes` included in that total)."""
    index = {c: i for i, c in enumerate(classes)}
    out = np.zeros((len(classes), len(classes)))
    totals = np.zeros(len(classes))
    for label, pred in zip(labels, preds, strict=True):
        if label in index:
            totals[index[label]] += 1
            if pred in index:
                out[index[label], index[pred]] += 1
    return out / np.maximum(totals, 1)[:, None] if normalize else out


def confusion_change(base: list[dict], merged: list[dict], k: int = 10, head: str | None = None,
                     normalize: bool = True) -> ConfusionChange:
    """Compare two lists of prediction records (predictions.jsonl lines) on the clips both have read."""
    label_key, pred_key = keys(head)
    merged_by_id = {r["id"]: r for r in merged if r.get(pred_key) is not None}
    pairs = [(r, merged_by_id[r["id"]]) for r in base if r.get(pred_key) is not None and r["id"] in merged_by_id]
    if not pairs:
        raise ValueError(f"the two files share no clip with a {pred_key!r} prediction")
    labels = [int(a[label_key]) for a, _ in pairs]
    classes = frequent_classes(labels, k)
    base_m = confusion(labels, [int(a[pred_key]) for a, _ in pairs], classes, normalize)
    merged_m = confusion(labels, [int(b[pred_key]) for _, b in pairs], classes, normalize)
    return ConfusionChange(classes, base_m, merged_m, len(pairs), head, normalize)


def read_class_names(path: str | Path) -> dict[int, str]:
    """Class names from a text file (one per line, line i = class i), a JSON list, or a JSON object mapping
    names to indices or indices to names; a CSV/TSV "index,name" per line also works."""
    path = Path(path)
    text = path.read_text()
    if path.suffix == ".json":
        data = json.loads(text)
        if isinstance(data, list):
            return dict(enumerate(map(str, data)))
        first = next(iter(data.values()), 0)
        if isinstance(first, int) or str(first).isdigit():
            return {int(v): str(k) for k, v in data.items()}
        return {int(k): str(v) for k, v in data.items()}
    names = {}
    for i, line in enumerate(line for line in text.splitlines() if line.strip()):
        parts = line.replace("\t", ",").split(",", 1)
        if len(parts) == 2 and parts[0].strip().isdigit():
            names[int(parts[0])] = parts[1].strip()
        else:
            names[i] = line.strip()
    return names


def plot_changes(changes: list[ConfusionChange], path: str | Path, names: dict[str, dict[int, str]] | None = None,
                 title: str | None = None) -> Path:
    """One heat map per change, side by side (diverging: red fewer, blue more predictions). names: per head
    (None -> key "") class index -> name."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(changes), figsize=(5.2 * len(changes), 4.8), squeeze=False)
    for ax, ch in zip(axes[0], changes, strict=True):
        table = (names or {}).get(ch.head or "", {})
        labels = [table.get(c, str(c)) for c in ch.classes]
        diff = ch.change
        limit = max(float(np.abs(diff).max()), 1e-9)
        image = ax.imshow(diff, cmap="RdBu", vmin=-limit, vmax=limit)
        for (i, j), value in np.ndenumerate(diff):
            if value:
                ax.text(j, i, f"{value:+.2f}" if ch.normalized else f"{value:+.0f}", ha="center", va="center",
                        fontsize=6)
        ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
        ax.set_yticks(range(len(labels)), labels, fontsize=7)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"{ch.head or 'class'}: merged - unmerged ({ch.clips} clips)", fontsize=9)
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    if title:
        fig.suptitle(title, fontsize=10)
    return save_figure(fig, path)
