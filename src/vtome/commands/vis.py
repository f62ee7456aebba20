"""`vtome vis`: the merged tokens of a clip, after the last layer or any layer, as a PNG grid and a GIF.

    vtome vis --model videomae-b --video clip.mp4 --r 0.1 --out pictures/clip.png          # final tokens
    vtome vis --model vivit-tiny --video synthetic:shapes --r 30 --layer 1 --out l1.png     # after layer 1
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from vtome.commands import visargs as a
from vtome.vis.picture import merged_picture, write


def vis_command(
    out: Annotated[Path, typer.Option(help="PNG to write (the GIF goes next to it, .gif).")],
    model: a.Model = "vivit-tiny",
    video: a.Video = "synthetic:shapes",
    r: a.R = 0.1,
    schedule: a.ScheduleOpt = "constant",
    mode: a.Mode = "merge",
    threshold: a.Threshold = None,
    layer: Annotated[int | None, typer.Option(help="Draw the tokens after this layer (1-based; default: the "
                                                   "last).")] = None,
    fill: a.Fill = "mean",
    border: a.Border = None,
    scale: a.Scale = None,
    columns: a.Columns = 8,
    gif: Annotated[bool, typer.Option(help="Also write an animated GIF.")] = True,
    fps: Annotated[float, typer.Option(help="GIF frames per second.")] = 4.0,
    sampling: a.Sampling = "uniform",
    seed: a.Seed = 0,
    as_json: a.Json = False,
) -> None:
    """Draw the merged tokens over a clip: each group in its mean colour (or pixels) with its own border colour,
    the same in every frame; the clip on top, its tokens below."""
    with a.user_errors():
        kwargs = a.patch_kwargs(r, schedule, mode, threshold, seed)
        net, frames = a.model_and_clip(model, video, sampling, seed)
        scale = a.auto_scale(net, scale)
        picture = merged_picture(net, frames, layer, fill, a.auto_border(scale, border), scale, seed, **kwargs)
        where = "final tokens" if layer is None else f"after layer {picture.layer}"
        title = f"{a.describe(model, kwargs)}  {where}: {picture.num_groups} groups"
        paths = write(picture, out, title, columns, fps, gif)
        summary = {"written": [str(p) for p in paths], "layer": picture.layer, "groups": picture.num_groups,
                   "tokens": picture.tokens}
        if as_json:
            print(json.dumps(summary))
            return
        console = Console()
        tokens = " -> ".join(map(str, picture.tokens))
        console.print(f"tokens per layer: {tokens}; {where}: {picture.num_groups} groups")
        for path in paths:
            console.print(f"wrote {path}")
