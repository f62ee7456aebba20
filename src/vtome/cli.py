"""The `vtome` command line. Each command lives in its own module under `vtome.commands`."""

import typer

from vtome.commands import bench, confusion, curves, demo, splice, sweep, vis, vis_duplicate
from vtome.commands import eval as eval_cmd
from vtome.commands import report as report_cmd

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


@app.callback()
def _root() -> None:
    """Training-free token merging for video transformers: measure and see what merging does."""


def main() -> None:
    app()
