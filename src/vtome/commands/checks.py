"""Checks of command-line input, made before any model loads: a bad value raises UserError, which `vtome.cli.main`
prints as one line on stderr ("what was given: what is allowed") and exits with status 2.

The merging settings are checked through the library's own checks (vtome.schedule.check_r / check_schedule,
vtome.patch's MODES), so that what the library allows is what the command line allows.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from pathlib import Path

import typer


class UserError(typer.BadParameter):
    """A bad input. Its message is the whole line shown to the user."""

    def format_message(self) -> str:
        return self.message


def fail(option: str, value: object, problem: str) -> UserError:
    """The error for `option` given `value`: "--r 2.5: <problem>". Raise what it returns."""
    shown = f"{value:g}" if isinstance(value, float) else str(value)
    return UserError(f"{option} {shown}: {problem}")


def at_least(option: str, value: int | float | None, low: int | float) -> None:
    if value is not None and not value >= low:  # `not >=` also refuses NaN
        raise fail(option, value, f"must be at least {low}")


def one_of(option: str, value: str | None, allowed: Iterable[str]) -> None:
    allowed = list(allowed)
    if value is not None and value not in allowed:
        raise fail(option, value, f"use one of {', '.join(allowed)}")


def only_with(option: str, given: bool, condition: bool, where: str) -> None:
    """Refuse an option that would be ignored: `option` applies only `where`."""
    if given and not condition:
        raise UserError(f"{option} applies only {where}")


# --- merging settings ----------------------------------------------------------------------------------------


def parse_r(value: float, option: str = "--r", max_fraction: float = 0.5) -> int | float:
    """A command-line r: below 1 a fraction of the tokens (0.1), else a whole count of tokens (300).
    max_fraction: the largest fraction (1 - 1/gamma for a partition with one target in gamma tokens)."""
    if not math.isfinite(value) or value < 0:
        raise fail(option, value, "must be a count of tokens (0, 1, 2, ...) or a fraction of the tokens below 1")
    if 0 < value < 1:
        r: int | float = float(value)
    elif float(value).is_integer():
        r = int(value)
    else:
        raise fail(option, value, "a count of tokens must be a whole number (a fraction of the tokens is written "
                                  "below 1, e.g. 0.1)")
    from vtome.schedule import check_r

    try:
        check_r(r, max_fraction)
    except ValueError as err:
        raise fail(option, value, str(err)) from err
    return r


def parse_schedule(text: str, option: str = "--schedule"):
    """A schedule name, or r per layer written as comma-separated whole numbers ("30,20,10")."""
    from vtome.schedule import check_schedule

    schedule: str | list[int] = text.strip()
    if "," in text or text.strip().lstrip("-").isdigit():
        try:
            schedule = [int(v) for v in text.split(",") if v.strip()]
        except ValueError as err:
            raise fail(option, text, "r per layer must be whole numbers, comma separated (e.g. 30,20,10)") from err
    try:
        check_schedule(schedule)
    except ValueError as err:
        raise fail(option, text, str(err)) from err
    return schedule


def check_mode(mode: str, threshold: float | None) -> None:
    """mode among vtome's reductions; a threshold (a cosine similarity) exactly when mode is hybrid."""
    from vtome.patch.state import MODES

    one_of("--mode", mode, MODES)
    if mode == "hybrid" and threshold is None:
        raise UserError("--mode hybrid needs --threshold T: edges with similarity >= T merge, the others drop")
    if mode != "hybrid" and threshold is not None:
        raise UserError(f"--threshold applies only to --mode hybrid, not --mode {mode}")
    if threshold is not None and not -1 <= threshold <= 1:
        raise fail("--threshold", threshold, "a cosine-similarity threshold must be in [-1, 1]")


def check_partition(partition: str, gamma: int | None, merge_weighting: str, tau: float, saliency: str | Path | None,
                    prior: bool) -> int:
    """The partition options (Video Token Merging); returns gamma with its default filled in.

    prior: whether the command has a clip to take a motion prior from (partition motion needs one)."""
    from vtome.partition import GAMMA_DEFAULTS, PARTITIONS
    from vtome.patch.state import MERGE_WEIGHTINGS

    one_of("--partition", partition, PARTITIONS)
    one_of("--merge-weighting", merge_weighting, MERGE_WEIGHTINGS)
    if gamma is not None and gamma < 2:
        raise fail("--gamma", gamma, "must be a whole number >= 2 (about one target in gamma tokens)")
    if partition == "alternate" and gamma not in (None, 2):
        raise fail("--gamma", gamma, "--partition alternate is ToMe's split (gamma 2); use --partition stride for "
                                     "another gamma")
    if not math.isfinite(tau) or tau <= 0:
        raise fail("--tau", tau, "the temperature of softmax(motion / tau) must be above 0")
    if partition == "motion" and not prior:
        raise UserError("--partition motion needs a motion prior, which this command has no clip to take from "
                        "(vtome eval and vtome vis take it from each clip; vtome bench from --prior-video)")
    if partition == "saliency" and saliency is None:
        raise UserError("--partition saliency needs --saliency FILE: a .pt or .safetensors file of vectors "
                        "(layers, C'), one per layer")
    only_with("--saliency", saliency is not None, partition == "saliency", "to --partition saliency")
    return GAMMA_DEFAULTS[partition] if gamma is None else gamma


def load_saliency(path: str | Path):
    """--saliency FILE: a tensor (layers, C') in a .pt / .pth (torch.save of the tensor) or .safetensors file (its
    only tensor); read before any model loads."""
    import torch

    path = input_file("--saliency", path)
    suffix = path.suffix.lower()
    if suffix not in (".pt", ".pth", ".safetensors"):
        raise fail("--saliency", path, "give a .pt, .pth or .safetensors file of vectors (layers, C')")
    try:
        if suffix == ".safetensors":
            from safetensors.torch import load_file

            found = list(load_file(str(path)).values())
            vectors = found[0] if len(found) == 1 else None
        else:
            vectors = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # unreadable, not a tensor file
        raise fail("--saliency", path, f"cannot read it ({type(err).__name__}: {err})") from err
    if not isinstance(vectors, torch.Tensor) or vectors.dim() != 2 or not vectors.is_floating_point():
        what = f"shape {tuple(vectors.shape)}" if isinstance(vectors, torch.Tensor) else type(vectors).__name__
        raise fail("--saliency", path, f"must hold one float tensor (layers, C'), one vector per layer; found {what}")
    return vectors


def merge_settings(r: float, schedule: str, mode: str, threshold: float | None, seed: int, partition: str = "alternate",
                   gamma: int | None = None, merge_weighting: str = "size", sample: bool = True, tau: float = 1.0,
                   saliency: str | Path | None = None, prior: bool = False) -> dict:
    """The vtome.patch arguments of the shared options, checked (saliency: the vectors read from the file).

    prior: whether the command can give a motion prior (a clip to take it from)."""
    gamma = check_partition(partition, gamma, merge_weighting, tau, saliency, prior)
    r_value = parse_r(r, max_fraction=1 - 1 / gamma)
    parsed = parse_schedule(schedule)
    check_mode(mode, threshold)
    return dict(r=r_value, schedule=parsed, mode=mode, threshold=threshold, seed=seed, partition=partition,
                gamma=gamma, merge_weighting=merge_weighting, sample=sample, tau=tau,
                saliency=None if saliency is None else load_saliency(saliency))


def partition_label(settings: dict) -> str:
    """The partition settings in a word or two for titles and names: "" for ToMe's (alternate, size-weighted);
    e.g. "stride g6", "motion g6 top" (not sampled), "center g6 uniform"."""
    partition = settings.get("partition", "alternate")
    parts = [] if partition == "alternate" else [partition, f"g{settings['gamma']}"]
    if partition in ("motion", "saliency"):
        if not settings.get("sample", True):
            parts.append("top")
        if partition == "motion" and settings.get("tau", 1.0) != 1.0:
            parts.append(f"tau{settings['tau']:g}")
    if settings.get("merge_weighting", "size") != "size":
        parts.append(settings["merge_weighting"])
    return " ".join(parts)


# --- devices -------------------------------------------------------------------------------------------------


def resolve_device(device: str | None) -> str:
    """The device to run on: as given (checked that it exists here), else cuda when available, else cpu. Under
    torchrun, cuda (given or default) is this process's GPU (LOCAL_RANK)."""
    import torch

    if device is None:
        if torch.cuda.is_available():
            return f"cuda:{os.environ.get('LOCAL_RANK', 0)}"
        return "cpu"
    if device == "cuda" and torch.cuda.is_available() and "LOCAL_RANK" in os.environ:
        device = f"cuda:{os.environ['LOCAL_RANK']}"  # under torchrun, "cuda" is this process's GPU, not GPU 0
    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError) as err:
        raise fail("--device", device, "use cpu, cuda, cuda:N or mps") from err
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise fail("--device", device, "no CUDA GPU is available here (torch.cuda.is_available() is False); "
                                           "use --device cpu")
        count = torch.cuda.device_count()
        if parsed.index is not None and parsed.index >= count:
            raise fail("--device", device, f"this machine has {count} CUDA GPU(s): cuda:0 to cuda:{count - 1}")
    elif parsed.type == "mps":
        if not torch.backends.mps.is_available():
            raise fail("--device", device, "MPS is not available here; use --device cpu")
    elif parsed.type != "cpu":
        raise fail("--device", device, "use cpu, cuda, cuda:N or mps")
    return device


# --- files ---------------------------------------------------------------------------------------------------


def _blocking_file(path: Path) -> Path | None:
    """The first ancestor of path that exists and is not a directory (so nothing can be created below it)."""
    for parent in path.parents:
        if parent.exists():
            return None if parent.is_dir() else parent
    return None


def output_file(option: str, path: str | Path, suffixes: tuple[str, ...] = ()) -> Path:
    """A file to write: not a directory, with one of `suffixes` (when given), under no file. Parents are created
    when it is written."""
    path = Path(path)
    what = f"a {' or '.join(suffixes)} file" if suffixes else "a file"
    if path.is_dir() or str(path).endswith(os.sep):
        raise fail(option, path, f"is a directory; give {what} to write")
    if suffixes and path.suffix.lower() not in suffixes:
        raise fail(option, path, f"give {what} to write (its name ends in {' or '.join(suffixes)})")
    blocking = _blocking_file(path)
    if blocking is not None:
        raise fail(option, path, f"{blocking} is a file, not a directory")
    return path


def output_dir(option: str, path: str | Path) -> Path:
    """A directory to write into (created when needed): not a file, under no file."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise fail(option, path, "is a file; give a directory")
    blocking = _blocking_file(path)
    if blocking is not None:
        raise fail(option, path, f"{blocking} is a file, not a directory")
    return path


def input_file(option: str, path: str | Path | None) -> Path | None:
    """A file that must exist (None passes)."""
    if path is None or str(path) == "":
        return None
    path = Path(path)
    if not path.exists():
        raise fail(option, path, "no such file")
    if not path.is_file():
        raise fail(option, path, "is a directory; give a file")
    return path


def input_dir(option: str, path: str | Path | None) -> Path | None:
    """A directory that must exist (None or "" passes)."""
    if path is None or str(path) == "":
        return None
    path = Path(path)
    if not path.is_dir():
        raise fail(option, path, "no such directory" if not path.exists() else "is a file; give a directory")
    return path


def int_list(option: str, text: str, low: int, high: int | None = None) -> list[int]:
    """Comma-separated whole numbers in [low, high]."""
    span = f"{low}..{high}" if high is not None else f"{low} or more"
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError as err:
        raise fail(option, text, f"give whole numbers in {span}, comma separated (e.g. 1,4)") from err
    if not values:
        raise fail(option, text, f"give whole numbers in {span}, comma separated (e.g. 1,4)")
    bad = [v for v in values if v < low or (high is not None and v > high)]
    if bad:
        raise fail(option, text, f"{', '.join(map(str, bad))} out of range; use {span}")
    return values
