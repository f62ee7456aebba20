"""`vtome report RESULTS...`: the paper's Table 1 (markdown on stdout, optionally CSV) from `vtome eval` runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from vtome.evaluation.report import load_results, table_rows, to_csv, to_markdown


def report_command(
    results: Annotated[list[Path], typer.Argument(help="metrics.json files or directories holding them.")],
    csv_path: Annotated[Path | None, typer.Option("--csv", help="Also write the table as CSV here.")] = None,
    markdown: Annotated[Path | None, typer.Option("--markdown", help="Also write the markdown table here.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the rows as JSON instead of markdown.")] = False,
) -> None:
    """Assemble evaluation results into the paper's Table 1: model x reduction rows, dataset columns, speedup."""
    try:
        found = load_results(results)
    except FileNotFoundError as err:
        raise typer.BadParameter(str(err)) from err
    if not found:
        raise typer.BadParameter("no metrics.json found in the given paths")
    rows = table_rows(found)
    text = to_markdown(rows)
    if csv_path is not None:
        to_csv(rows, csv_path)
    if markdown is not None:
        markdown.write_text(text)
    print(json.dumps(rows, indent=2, ensure_ascii=False) if as_json else text, end="" if not as_json else "\n")
