"""Small helpers shared by the dataset readers."""

from __future__ import annotations

from pathlib import Path


def require_file(path: str | Path | None, what: str) -> Path:
    """`path` as a Path, or a FileNotFoundError that says which dataset file is missing."""
    if path is None or str(path) == "":
        raise FileNotFoundError(f"no {what} given (pass it with --split)")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    return path


def require_dir(path: str | Path | None, what: str) -> Path:
    """`path` as a Path, or a FileNotFoundError that says which dataset directory is missing."""
    if path is None or str(path) == "":
        raise FileNotFoundError(f"no {what} given (pass it with --root)")
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{what} not found: {path}")
    return path
