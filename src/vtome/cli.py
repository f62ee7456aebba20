"""The `vtome` command line. Each command lives in its own module under `vtome.commands`.

A user error (a bad option, a missing file, a model vtome cannot use) ends with status 2 and one line on stderr,
never a traceback; `vtome --debug ...` or VTOME_DEBUG=1 shows the traceback too.
"""

from __future__ import annotations

import os
import sys

import typer

import vtome
from vtome.commands import bench, confusion, curves, demo, splice, sweep, vis, vis_duplicate, vtm
from vtome.commands import eval as eval_cmd
from vtome.commands import models as models_cmd
from vtome.commands import report as report_cmd
from vtome.commands.output import legacy_json_path

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="Training-free token merging for video transformers: measure and see what merging does.",
)
app.command("demo")(demo.demo)
app.command("bench")(bench.bench_command)
app.command("sweep")(sweep.sweep_command)
app.command("vis")(vis.vis_command)
app.command("vis-duplicate")(vis_duplicate.duplicate_command)
app.command("splice")(splice.splice_command)
app.command("confusion")(confusion.confusion_command)
app.command("curves")(curves.curves_command)
app.command("eval")(eval_cmd.eval_command)
app.command("report")(report_cmd.report_command)
app.command("models")(models_cmd.models_command)
app.add_typer(vtm.app, name="vtm")


def _version(value: bool) -> None:
    if value:
        print(f"vtome {vtome.__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
    debug: bool = typer.Option(False, "--debug", help="Show the traceback of a user error (also VTOME_DEBUG=1)."),
) -> None:
    """Training-free token merging for video transformers: measure and see what merging does."""


def _one_line(text: str) -> str:
    return " ".join(text.split())


def main(argv: list[str] | None = None) -> None:
    """Run the command line (argv: the arguments after `vtome`; default sys.argv[1:]) and exit."""
    args = legacy_json_path(list(sys.argv[1:] if argv is None else argv))
    command_name = next((a for a in args if not a.startswith("-")), "")
    debug = "--debug" in args[: args.index(command_name)] if command_name else "--debug" in args
    debug = debug or os.environ.get("VTOME_DEBUG", "") not in ("", "0")
    command = typer.main.get_command(app)
    try:
        code = command.main(args=args, prog_name="vtome", standalone_mode=False)
    except typer.Abort:
        sys.exit(130)
    except typer.TyperException as err:  # click's usage errors and vtome's UserError
        if debug:
            raise
        message = _one_line(err.format_message() if hasattr(err, "format_message") else str(err))
        if message and os.environ.get("RANK", "0") == "0":  # none after click's help; under torchrun, rank 0 says it
            print(f"{' '.join(['vtome', command_name]).strip()}: error: {message}", file=sys.stderr)
        sys.exit(getattr(err, "exit_code", 2))
    sys.exit(code if isinstance(code, int) else 0)
