"""The `vtome` command line. Each command lives in its own module under `vtome.commands`."""

import typer

from vtome.commands import demo

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="Training-free token merging for video transformers: measure and see what merging does.",
)
app.command("demo")(demo.demo)


@app.callback()
def _root() -> None:
    """Training-free token merging for video transformers: measure and see what merging does."""


def main() -> None:
    app()
