"""`vtome curves`: accuracy and speedup against r (paper Fig. 3) from eval and sweep results.

    vtome curves runs/ sweep.csv --out curves.png          # metrics.json files under runs/, a sweep CSV
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from vtome.vis.curves import load_points, plot_curves


def curves_command(
    results: Annotated[list[Path], typer.Argument(help="metrics.json files, directories holding them, sweep CSVs.")],
    out: Annotated[Path, typer.Option(help="PNG to write.")],
    metric: Annotated[str, typer.Option(help="Accuracy key (EPIC: verb_top1, noun_top1, action_top1).")] = "top1",
    speedup: Annotated[str, typer.Option(help="CSV column of the speedup: speedup (measured) or flop_speedup.")
                       ] = "speedup",
    title: Annotated[str | None, typer.Option(help="Figure title.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the points as JSON.")] = False,
) -> None:
    """Plot accuracy vs r, speedup vs r and accuracy vs speedup, one line per model and schedule."""
    for path in results:
        if not path.exists():
            raise typer.BadParameter(f"no results at {path}")
    points = load_points(results, metric, speedup)
    path = plot_curves(points, out, title, metric)
    if as_json:
        print(json.dumps({"written": [str(path)], "points": [p.__dict__ for p in points]}))
        return
    Console().print(f"{len(points)} points; wrote {path}")
