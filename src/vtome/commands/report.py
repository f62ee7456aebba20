"""`vtome report RESULTS...`: the paper's Table 1 (markdown on stdout, optionally CSV) from `vtome eval` runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vtome.commands.checks import UserError, output_file
from vtome.commands.output import Json, JsonOut, check_json_out, emit
from vtome.evaluation.report import load_results, table_rows, to_csv, to_markdown


def report_command(
    results: Annotated[list[Path], typer.Argument(help="metrics.json files or directories holding them.")],
    csv_path: Annotated[Path | None, typer.Option("--csv", help="Also write the table as CSV here.")] = None,
    markdown: Annotated[Path | None, typer.Option("--markdown", help="Also write the markdown table here.")] = None,
    as_json: Json = False,
    json_out: JsonOut = None,
) -> None:
    """Assemble evaluation results into the paper's Table 1: model x reduction rows, dataset columns, speedup."""
    for option, path in (("--csv", csv_path), ("--markdown", markdown)):
        if path is not None:
            output_file(option, path)
    check_json_out(json_out)
    try:
        found = load_results(results)
    except (FileNotFoundError, ValueError) as err:
        raise UserError(str(err)) from err
    if not found:
        raise UserError(f"no metrics.json in {' '.join(map(str, results))} (the results of vtome eval)")
    rows = table_rows(found)
    text = to_markdown(rows)
    for path in (csv_path, markdown):
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
    if csv_path is not None:
        to_csv(rows, csv_path)
    if markdown is not None:
        markdown.write_text(text)
    emit(rows, as_json, json_out)
    if not as_json:
        print(text, end="")
