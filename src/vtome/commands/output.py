"""One convention for machine-readable output in every command: `--json` prints the result as JSON on stdout
(and nothing else goes to stdout), `--json-out PATH` writes it to a file (the usual text still prints).

Before 0.2, `bench` and `sweep` took `--json PATH`; that spelling still works, with a note on stderr.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from vtome.commands.checks import output_file

Json = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout (nothing else goes there).")]
JsonOut = Annotated[Path | None, typer.Option("--json-out", help="Also write the result as JSON to this file.")]

LEGACY_JSON_PATH = ("bench", "sweep")


def legacy_json_path(args: list[str]) -> list[str]:
    """`vtome bench|sweep --json PATH` -> `--json-out PATH`, with a deprecation note on stderr."""
    command = next((a for a in args if not a.startswith("-")), None)
    if command not in LEGACY_JSON_PATH:
        return args
    out: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--json" and i + 1 < len(args) and not args[i + 1].startswith("-"):
            out += ["--json-out", args[i + 1]]
            i += 2
            _note(command)
            continue
        out.append("--json-out=" + arg.split("=", 1)[1] if arg.startswith("--json=") else arg)
        if arg.startswith("--json="):
            _note(command)
        i += 1
    return out


def _note(command: str) -> None:
    print(f"vtome {command}: note: `--json PATH` is deprecated; use `--json-out PATH` (`--json` alone prints the "
          "result on stdout)", file=sys.stderr)


def check_json_out(path: Path | None) -> None:
    """Refuse a --json-out that cannot be written, before any work."""
    if path is not None:
        output_file("--json-out", path)


def console(as_json: bool) -> Console:
    """The console of a command's text output: silent under --json, so that stdout holds the JSON alone."""
    return Console(quiet=as_json)


def emit(result: object, as_json: bool, json_out: Path | None, text: Console | None = None) -> None:
    """Write result to json_out (saying so on `text`) and print it on stdout under --json."""
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
        if text is not None:
            text.print(f"wrote {json_out}")
    if as_json:
        print(json.dumps(result, ensure_ascii=False))
