"""What the picture commands (vis, vis-duplicate, splice) share: options, loading the model and the clip."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import torch
import typer

from vtome.models import load_model
from vtome.vis.clips import SYNTHETIC, load_clip, synthetic_clip
from vtome.vis.layout import token_layout

Model = Annotated[str, typer.Option(help="Preset (e.g. vivit-tiny, videomae-b), local save_pretrained directory "
                                         "or HF id.")]
Video = Annotated[str, typer.Option(help="A video file or frame folder, or synthetic:halves / synthetic:shapes.")]
R = Annotated[float, typer.Option(help="Tokens merged per layer (a value below 1 is a fraction of the tokens).")]
ScheduleOpt = Annotated[str, typer.Option("--schedule", help="constant | decreasing | increasing | r per layer, "
                                                              "comma separated.")]
Mode = Annotated[str, typer.Option(help="merge | drop | random_drop | random_merge | hybrid")]
Threshold = Annotated[float | None, typer.Option(help="Similarity threshold for --mode hybrid.")]
Seed = Annotated[int, typer.Option(help="Seed for random modes, splicing and colours.")]
Fill = Annotated[str, typer.Option(help="mean: each group in its mean colour; pixels: the original pixels.")]
Border = Annotated[int | None, typer.Option(help="Border width in output pixels (default: scale // 2, at least 1; "
                                                  "0: none).")]
Scale = Annotated[int | None, typer.Option(help="Enlarge the frames by this integer factor (default: to ~256 px).")]
Columns = Annotated[int, typer.Option(help="Frames per row of the PNG grid.")]
Sampling = Annotated[str, typer.Option(help="Frames from a video: uniform (over the whole video) | rate.")]
Json = Annotated[bool, typer.Option("--json", help="Print a JSON summary instead of text.")]


def parse_r(r: float) -> int | float:
    return r if 0 < r < 1 else int(r)


def parse_schedule(schedule: str):
    if "," in schedule or schedule.isdigit():
        return [int(v) for v in schedule.split(",") if v.strip()]
    return schedule


def patch_kwargs(r: float, schedule: str, mode: str, threshold: float | None, seed: int) -> dict:
    """The vtome.patch arguments of the shared options."""
    return dict(r=parse_r(r), schedule=parse_schedule(schedule), mode=mode, threshold=threshold, seed=seed)


def model_and_clip(model: str, video: str, sampling: str = "uniform", seed: int = 0):
    """Load the model (eval mode) and the clip it will see: uint8 (T, h, w, 3) at its input size."""
    torch.manual_seed(seed)
    net = load_model(model)
    return net, clip_of(net, video, sampling, seed)


def clip_of(model: torch.nn.Module, video: str, sampling: str = "uniform", seed: int = 0) -> torch.Tensor:
    if video.startswith("synthetic:"):
        kind = video.split(":", 1)[1]
        if kind not in SYNTHETIC:
            raise typer.BadParameter(f"unknown synthetic clip {kind!r}; choose from {', '.join(SYNTHETIC)}")
        layout = token_layout(model)
        return synthetic_clip(kind, layout.frames, layout.height, layout.width, seed)
    if not Path(video).exists():
        raise typer.BadParameter(f"video not found: {video}")
    return load_clip(video, model, sampling)


def auto_scale(model: torch.nn.Module, scale: int | None) -> int:
    """The enlargement: as given, else enough to make frames about 256 px high (1 for larger frames)."""
    return scale if scale else max(1, round(256 / token_layout(model).height))


def auto_border(scale: int, border: int | None) -> int:
    return border if border is not None else max(1, scale // 2)


def describe(model: str, kwargs: dict) -> str:
    """A one-line title: model and merging settings."""
    schedule = kwargs["schedule"] if isinstance(kwargs["schedule"], str) else ",".join(map(str, kwargs["schedule"]))
    text = f"{model}  r={kwargs['r']:g} {schedule} {kwargs['mode']}"
    return text + (f" t={kwargs['threshold']:g}" if kwargs.get("threshold") is not None else "")


@contextmanager
def user_errors() -> Iterator[None]:
    """Report bad settings (ValueError) and missing files as a usage error instead of a traceback."""
    try:
        yield
    except (ValueError, FileNotFoundError) as err:
        raise typer.BadParameter(str(err)) from err
