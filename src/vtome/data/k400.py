"""Kinetics-400: a split file of `relative/path label` lines (space or comma separated) under a path prefix.

    samples = k400_samples("val.csv", root="/data/k400/videos")

Labels are class indices, or class names mapped through `class_to_index` (e.g. a checkpoint's label2id).
Videos are not opened here: a missing one fails when it is read, and is reported by the evaluation.
"""

from __future__ import annotations

from pathlib import Path

from vtome.data.samples import Sample
from vtome.data.splits import require_file


def _split_line(line: str) -> tuple[str, str]:
    """`path label`, `path<TAB>label` or `path,label` (the last separator splits: paths may hold spaces)."""
    if "," in line:
        path, _, label = line.rpartition(",")
    else:
        parts = line.rsplit(maxsplit=1)
        path, label = (parts[0], parts[1]) if len(parts) == 2 else (line, "")
    return path.strip(), label.strip()


def k400_samples(
    split: str | Path, root: str | Path = "", class_to_index: dict[str, int] | None = None
) -> list[Sample]:
    """One Sample per non-empty line of `split`; ids are the paths as written in the file."""
    split = require_file(split, "Kinetics-400 split file")
    samples = []
    for number, raw in enumerate(split.read_text().splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        path, label = _split_line(line)
        if not path or not label:
            raise ValueError(f"{split}:{number}: expected `relative/path label`, got {raw!r}")
        if number == 1 and label.lower() in ("label", "labels", "class"):  # a header line
            continue
        if label.lstrip("-").isdigit():
            index = int(label)
        elif class_to_index is not None and label in class_to_index:
            index = class_to_index[label]
        elif class_to_index is not None and label.replace("_", " ") in class_to_index:
            index = class_to_index[label.replace("_", " ")]
        else:
            raise ValueError(f"{split}:{number}: label {label!r} is neither a class index nor a known class name")
        samples.append(Sample(id=path, path=str(Path(root, path)), label=index))
    return samples
