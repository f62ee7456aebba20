"""`vtome confusion`: how merging changes the confusion matrix (paper Fig. 4 / 10), from two eval runs.

    vtome confusion runs/videomae-epic-r0/predictions.jsonl runs/videomae-epic-r150/predictions.jsonl \\
        --k 10 --out confusion.png             # EPIC runs: a verb and a noun panel
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from vtome.evaluation.results import read_records
from vtome.vis.confusion import confusion_change, plot_changes, read_class_names


def _records(path: Path) -> list[dict]:
    path = path / "predictions.jsonl" if path.is_dir() else path
    records = read_records(path)
    if not records:
        raise typer.BadParameter(f"no prediction records in {path}")
    return records


def _run_name(path: Path) -> str:
    return path.parent.name if path.name == "predictions.jsonl" else path.stem


def confusion_command(
    base: Annotated[Path, typer.Argument(help="predictions.jsonl (or its run directory) without merging.")],
    merged: Annotated[Path, typer.Argument(help="predictions.jsonl (or its run directory) with merging.")],
    out: Annotated[Path, typer.Option(help="PNG to write.")],
    k: Annotated[int, typer.Option(help="Show the k most frequent true classes.")] = 10,
    head: Annotated[list[str] | None, typer.Option(help="Which predictions: class, verb, noun (repeatable; default: "
                                                        "verb and noun for EPIC runs, else class).")] = None,
    classes: Annotated[list[Path] | None, typer.Option(help="Class names (txt one per line, json, or csv "
                                                            "index,name); one file per head, in --head order.")
                       ] = None,
    counts: Annotated[bool, typer.Option("--counts", help="Change in clip counts instead of the share of each "
                                                          "true class.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the matrices as JSON.")] = False,
) -> None:
    """Plot merged minus unmerged confusion over the k most frequent classes: red fewer, blue more predictions."""
    base_records, merged_records = _records(base), _records(merged)
    heads = head or (["verb", "noun"] if "verb_label" in base_records[0] else ["class"])
    changes = [confusion_change(base_records, merged_records, k, None if h == "class" else h, not counts)
               for h in heads]
    names = {}
    for h, file in zip(heads, classes or [], strict=False):
        names["" if h == "class" else h] = read_class_names(file)
    path = plot_changes(changes, out, names, title=f"{_run_name(merged)} vs {_run_name(base)}")
    if as_json:
        print(json.dumps({"written": [str(path)], "heads": {
            h: {"classes": c.classes, "clips": c.clips, "base": c.base.tolist(), "merged": c.merged.tolist(),
                "change": c.change.tolist()} for h, c in zip(heads, changes, strict=True)}}))
        return
    console = Console()
    for h, c in zip(heads, changes, strict=True):
        diag = float(c.change.trace())
        unit = "clips" if counts else "share of the class's clips, summed"
        console.print(f"{h}: {c.clips} clips, top-{len(c.classes)} classes; diagonal change {diag:+.3f} ({unit})")
    console.print(f"wrote {path}")
