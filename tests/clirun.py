"""Running `vtome` in-process through `vtome.cli.main`, as the console script does: exit status, stdout and stderr
apart. And the check of a refused input: status 2, one line on stderr, no traceback (the fixture that fails a test
when a model loads is `no_model_load`, in conftest.py)."""

from __future__ import annotations

from dataclasses import dataclass

from vtome.cli import main


@dataclass
class Run:
    code: int
    out: str
    err: str


def vtome(capsys, *args) -> Run:
    """Run `vtome ARGS...`; returns its exit status and what it wrote to stdout and stderr."""
    capsys.readouterr()  # drop anything printed before
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    captured = capsys.readouterr()
    return Run(code, captured.out, captured.err)


def refused(run: Run, *fragments: str) -> str:
    """Assert a user error: status 2, exactly one line on stderr naming what was wrong, nothing on stdout, no
    traceback. Returns the line."""
    lines = run.err.strip().splitlines()
    assert run.code == 2, run
    assert len(lines) == 1, run.err
    assert "Traceback" not in run.err and run.out == "", run
    assert lines[0].startswith("vtome") and ": error: " in lines[0], lines[0]
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"
    return lines[0]
