"""`vtome confusion`: how merging changes the confusion matrix (paper Fig. 4 / 10), from two eval runs.

    vtome confusion runs/videomae-epic-r0/predictions.jsonl runs/videomae-epic-r150/predictions.jsonl \\
        --k 10 --out confusion.png             # EPIC runs: a verb and a noun panel

Class names come from --classes, else from the checkpoint the runs evaluated (its id2label, when the run's
settings.json names a model that is here: a directory, a preset or a hub id in the local cache).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from vtome.commands.checks import UserError, at_least, fail, input_file, output_file
from vtome.commands.output import Json, JsonOut, check_json_out, console, emit
from vtome.evaluation.results import PREDICTIONS, read_records
from vtome.vis.confusion import confusion_change, keys, plot_changes, read_class_names

HEADS = ("class", "verb", "noun")


def _records(option: str, path: Path) -> list[dict]:
    path = path / PREDICTIONS if path.is_dir() else path
    input_file(option, path)
    records = read_records(path)
    if not records:
        raise fail(option, path, "holds no prediction records (predictions.jsonl of vtome eval)")
    return records


def _run_name(path: Path) -> str:
    return path.parent.name if path.name == PREDICTIONS else path.stem


def _class_names(path: Path) -> dict[int, str]:
    try:
        return read_class_names(path)
    except (ValueError, UnicodeDecodeError, AttributeError) as err:
        raise fail("--classes", path, f"cannot read class names ({type(err).__name__}: {err}); give a txt (one name "
                                      "per line), a json list or object, or a csv of index,name") from err


def _checkpoint_names(path: Path) -> dict[int, str]:
    """id2label of the model a run evaluated, when its settings.json names one that is available offline."""
    from vtome.commands.modelspec import label_names, resolve
    from vtome.evaluation.loop import SETTINGS

    run = path if path.is_dir() else path.parent
    try:
        model = json.loads((run / SETTINGS).read_text()).get("model")
        return label_names(resolve(model, local_only=True)) if model else {}
    except (OSError, ValueError, UserError):  # no settings, or a model that is not here: indices it is
        return {}


def confusion_command(
    base: Annotated[Path, typer.Argument(help="predictions.jsonl (or its run directory) without merging.")],
    merged: Annotated[Path, typer.Argument(help="predictions.jsonl (or its run directory) with merging.")],
    out: Annotated[Path, typer.Option(help="PNG to write.")],
    k: Annotated[int, typer.Option(help="Show the k most frequent true classes.")] = 10,
    head: Annotated[list[str] | None, typer.Option(help="Which predictions: class, verb, noun (repeatable; default: "
                                                        "verb and noun for EPIC runs, else class).")] = None,
    classes: Annotated[list[Path] | None, typer.Option(help="Class names (txt one per line, json, or csv "
                                                            "index,name); one file per head, in --head order "
                                                            "(default: the checkpoint's id2label, for class).")
                       ] = None,
    counts: Annotated[bool, typer.Option("--counts", help="Change in clip counts instead of the share of each "
                                                          "true class.")] = False,
    as_json: Json = False,
    json_out: JsonOut = None,
) -> None:
    """Plot merged minus unmerged confusion over the k most frequent classes: red fewer, blue more predictions."""
    at_least("--k", k, 1)
    for h in head or []:
        if h not in HEADS:
            raise fail("--head", h, f"use one of {', '.join(HEADS)}")
    output_file("--out", out, (".png",))
    check_json_out(json_out)
    for file in classes or []:
        input_file("--classes", file)
    base_records, merged_records = _records("BASE", base), _records("MERGED", merged)
    epic = "verb_label" in base_records[0]
    heads = head or (["verb", "noun"] if epic else ["class"])
    if len(classes or []) > len(heads):
        raise UserError(f"--classes: {len(classes)} files for {len(heads)} head(s) ({', '.join(heads)})")
    for h in heads:
        label_key, _ = keys(None if h == "class" else h)
        if h != "class" and label_key not in base_records[0]:
            raise fail("--head", h, f"{base} has no {h} predictions (not an EPIC run); use --head class")
    names = {"" if h == "class" else h: _class_names(file) for h, file in zip(heads, classes or [], strict=False)}
    if "class" in heads and "" not in names and not epic:
        names[""] = _checkpoint_names(base) or _checkpoint_names(merged)
    try:
        changes = [confusion_change(base_records, merged_records, k, None if h == "class" else h, not counts)
                   for h in heads]
    except ValueError as err:  # no clip in common
        raise UserError(f"{base} and {merged}: {err} (are they runs of the same split?)") from err
    path = plot_changes(changes, out, names, title=f"{_run_name(merged)} vs {_run_name(base)}")
    text = console(as_json)
    unit = "clips" if counts else "share of the class's clips, summed"
    for h, c in zip(heads, changes, strict=True):
        diagonal = float(c.change.trace())
        text.print(f"{h}: {c.clips} clips, top-{len(c.classes)} classes; diagonal change {diagonal:+.3f} ({unit})")
    text.print(f"wrote {path}")
    table = {h: names.get("" if h == "class" else h, {}) for h in heads}
    emit({"written": [str(path)], "heads": {
        h: {"classes": c.classes, "names": [table[h].get(i, str(i)) for i in c.classes], "clips": c.clips,
            "base": c.base.tolist(), "merged": c.merged.tolist(), "change": c.change.tolist()}
        for h, c in zip(heads, changes, strict=True)}}, as_json, json_out, text)
