"""What the picture commands (vis, vis-duplicate, splice) share: options, their checks, loading the model and the
clip. The clip is read (and a bad one refused) on the model's meta architecture, before its weights load."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import torch
import typer

from vtome.commands.checks import UserError, at_least, fail, one_of, output_file, partition_label, resolve_device
from vtome.commands.modelspec import ModelSpec, resolve
from vtome.vis.clips import SAMPLING, SYNTHETIC, load_clip, synthetic_clip
from vtome.vis.layout import token_layout
from vtome.vis.render import FILLS

Model = Annotated[str, typer.Option(help="Preset (e.g. vivit-tiny, videomae-b; see `vtome models`), local directory "
                                         "(save_pretrained or timm save_for_hf) or hub id.")]
Video = Annotated[str, typer.Option(help="A video file or frame folder, or synthetic:halves / synthetic:shapes.")]
R = Annotated[float, typer.Option(help="Tokens merged per layer, a whole number (a value below 1 is a fraction of "
                                       "the tokens).")]
ScheduleOpt = Annotated[str, typer.Option("--schedule", help="constant | decreasing | increasing | r per layer, "
                                                              "comma separated.")]
Mode = Annotated[str, typer.Option(help="merge | drop | random_drop | random_merge | hybrid")]
Threshold = Annotated[float | None, typer.Option(help="Similarity threshold in [-1, 1], for --mode hybrid only.")]
Seed = Annotated[int, typer.Option(help="Seed for random modes, splicing and colours.")]
Fill = Annotated[str, typer.Option(help="mean: each group in its mean colour; pixels: the original pixels.")]
Border = Annotated[int | None, typer.Option(help="Border width in output pixels (default: scale // 2, at least 1; "
                                                  "0: none).")]
Scale = Annotated[int | None, typer.Option(help="Enlarge the frames by this integer factor (default: to ~256 px).")]
Columns = Annotated[int, typer.Option(help="Frames per row of the PNG grid.")]
Sampling = Annotated[str, typer.Option(help="Frames from a video: uniform (over the whole video) | rate.")]
Device = Annotated[str | None, typer.Option(help="cpu | cuda | cuda:N (default: cuda when available, else cpu).")]


def check_drawing(fill: str, border: int | None, scale: int | None, columns: int, sampling: str) -> None:
    one_of("--fill", fill, FILLS)
    at_least("--border", border, 0)
    at_least("--scale", scale, 1)
    at_least("--columns", columns, 1)
    one_of("--sampling", sampling, SAMPLING)


def png_out(out: Path) -> Path:
    return output_file("--out", out, (".png",))


def depth(spec: ModelSpec) -> int:
    """How many layers vtome merges in (read on the meta architecture)."""
    from vtome.vis.duplicate import model_depth

    return model_depth(spec.empty())


def check_layer(option: str, layer: int | None, spec: ModelSpec) -> None:
    """A layer to draw after: 0 (the input tokens) to the model's depth."""
    layers = depth(spec)
    if layer is not None and not 0 <= layer <= layers:
        raise fail(option, layer, f"use 0..{layers} (0: the input tokens, {layers}: after the last layer)")


def prepare(model: str, video: str, sampling: str, seed: int, device: str | None, settings: dict,
            ) -> tuple[ModelSpec, torch.Tensor, str]:
    """Check the model, the merging settings and the device, and read the clip, all before the weights load.
    Returns (spec, frames: uint8 (T, h, w, 3) at the model's input size, device)."""
    device = resolve_device(device)
    spec = resolve(model)
    spec.check_patch(settings)
    return spec, clip_of(spec.empty(), video, sampling, seed), device


def load(spec: ModelSpec, seed: int, device: str) -> torch.nn.Module:
    torch.manual_seed(seed)  # presets: the same random weights every time
    return spec.load(device)


def clip_of(model: torch.nn.Module, video: str, sampling: str = "uniform", seed: int = 0,
            option: str = "--video") -> torch.Tensor:
    """The clip `video` names as the model takes it: uint8 (T, h, w, 3)."""
    from vtome.data.video import VideoError

    if video.startswith("synthetic:"):
        kind = video.split(":", 1)[1]
        if kind not in SYNTHETIC:
            raise fail(option, video, f"unknown synthetic clip; use {' or '.join('synthetic:' + k for k in SYNTHETIC)}")
        layout = token_layout(model)
        return synthetic_clip(kind, layout.frames, layout.height, layout.width, seed)
    if not Path(video).exists():
        raise fail(option, video, "no such file or frame folder (or synthetic:halves / synthetic:shapes)")
    try:
        return load_clip(video, model, sampling)
    except (VideoError, IndexError, OSError, RuntimeError) as err:  # corrupt, empty, no decoder
        raise fail(option, video, f"cannot read it ({type(err).__name__}: {err})") from err


def clip_prior(spec: ModelSpec, video: str, frames: torch.Tensor, sampling: str = "uniform"):
    """The motion prior of the clip `video` names (vtome.motion_prior, on the meta architecture, before the weights
    load): a file's motion vectors, else the frame difference of `frames` (uint8 (T, h, w, 3) at the model's size,
    as clip_of gives them)."""
    import dataclasses

    from vtome.data.transforms import clip_transform
    from vtome.data.video import VideoError
    from vtome.motion import motion_prior
    from vtome.vis.clips import clip_sampler, is_image_model

    model = spec.empty()
    if is_image_model(model):
        raise UserError(f"--partition motion: --model {spec.name} is an image model; a motion prior needs a clip")
    if video.startswith("synthetic:"):  # already resized and cropped: only the model's crop applies
        return motion_prior(frames, model, transform=dataclasses.replace(clip_transform(model), resize=None))
    try:
        return motion_prior(video, model, sampler=clip_sampler(model, sampling))
    except (VideoError, IndexError, OSError, RuntimeError) as err:
        raise fail("--video", video, f"cannot read its motion ({type(err).__name__}: {err})") from err


def auto_scale(model: torch.nn.Module, scale: int | None) -> int:
    """The enlargement: as given, else enough to make frames about 256 px high (1 for larger frames)."""
    return scale if scale else max(1, round(256 / token_layout(model).height))


def auto_border(scale: int, border: int | None) -> int:
    return border if border is not None else max(1, scale // 2)


def describe(model: str, kwargs: dict) -> str:
    """A one-line title: model and merging settings."""
    schedule = kwargs["schedule"] if isinstance(kwargs["schedule"], str) else ",".join(map(str, kwargs["schedule"]))
    text = f"{model}  r={kwargs['r']:g} {schedule} {kwargs['mode']}"
    text += f" t={kwargs['threshold']:g}" if kwargs.get("threshold") is not None else ""
    partition = partition_label(kwargs)
    return text + (f", partition {partition}" if partition else "")

