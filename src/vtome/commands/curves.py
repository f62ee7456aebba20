"""`vtome curves`: accuracy and speedup against r (paper Fig. 3) from eval and sweep results.

    vtome curves runs/ sweep.csv --out curves.png          # metrics.json files under runs/, a sweep CSV
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from vtome.commands.checks import UserError, fail, one_of, output_file
from vtome.commands.output import Json, JsonOut, check_json_out, console, emit
from vtome.vis.curves import SPEEDUPS, load_points, plot_curves, read_csv


def _note_flop_only(paths: list[Path], metric: str, speedup: str) -> None:
    """Say so when a CSV has no value in the --speedup column (a sweep without --bench has only FLOPs)."""
    for path in paths:
        if path.suffix == ".csv" and speedup == "speedup":
            points = read_csv(path, metric, speedup)
            if points and all(p.speedup is None for p in points):
                print(f"vtome curves: note: {path} has no measured speedup (a sweep without --bench): its lines are "
                      "left out of the speedup panels; --speedup flop_speedup draws the FLOP-ideal one",
                      file=sys.stderr)


def curves_command(
    results: Annotated[list[Path], typer.Argument(help="metrics.json files, directories holding them, sweep CSVs.")],
    out: Annotated[Path, typer.Option(help="PNG to write.")],
    metric: Annotated[str, typer.Option(help="Accuracy key (EPIC: verb_top1, noun_top1, action_top1).")] = "top1",
    speedup: Annotated[str, typer.Option(help="CSV column of the speedup: speedup (measured) or flop_speedup "
                                              "(FLOP-ideal; named so in the legend).")] = "speedup",
    title: Annotated[str | None, typer.Option(help="Figure title.")] = None,
    as_json: Json = False,
    json_out: JsonOut = None,
) -> None:
    """Plot accuracy vs r, speedup vs r and accuracy vs speedup, one line per model and schedule."""
    one_of("--speedup", speedup, SPEEDUPS)
    output_file("--out", out, (".png",))
    check_json_out(json_out)
    for path in results:
        if not path.exists():
            raise fail("RESULTS", path, "no such file or directory")
        if path.is_file() and path.suffix not in (".csv", ".json"):
            raise fail("RESULTS", path, "give metrics.json files, directories holding them, or sweep CSVs")
    try:
        _note_flop_only(results, metric, speedup)
        points = load_points(results, metric, speedup)
    except (ValueError, KeyError, UnicodeDecodeError) as err:  # not results
        raise UserError(f"{' '.join(map(str, results))}: {err}") from err
    if any(p.suffix != ".csv" for p in results) and all(p.accuracy is None for p in points):
        raise fail("--metric", metric, "none of the results has it (eval metrics: top1, top5; EPIC: action_top1, "
                                       "verb_top1, noun_top1, ...)")
    try:
        path = plot_curves(points, out, title, metric)
    except ValueError as err:  # nothing to plot
        raise UserError(f"{' '.join(map(str, results))}: {err}") from err
    text = console(as_json)
    text.print(f"{len(points)} points; wrote {path}")
    emit({"written": [str(path)], "points": [p.__dict__ for p in points]}, as_json, json_out, text)

